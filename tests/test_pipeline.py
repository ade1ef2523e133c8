"""The real `dvc repro`, in a temporary git repository, on a small profile of the real data.

Checks every output, that a second run does nothing, that a params change reruns only the stages that
read it, and that a forced rerun reproduces every output byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages.model_files import load_model
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

SMALL_PROFILE = {
    "fetch": {"max_train_images": 600, "max_test_images": 200},
    "train": {"epochs": 1, "warmup_epochs": 0, "batch_size": 32},
}
ALL_STAGES = ["fetch", "preprocess", "train", "evaluate", "predict"]


def run(command: list[str], cwd: Path) -> str:
    # DVC runs each stage's `python` through the shell: make it this interpreter.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def dvc(repo: Path, *arguments: str) -> str:
    return run([str(Path(sys.executable).parent / "dvc"), *arguments], repo)


def stages_run(output: str) -> list[str]:
    return [stage for stage in ALL_STAGES if f"Running stage '{stage}'" in output]


def set_params(repo: Path, changes: dict[str, dict[str, object]]) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in changes.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh git + DVC repository holding the project, with the small profile, after one `dvc repro`."""
    root = tmp_path_factory.mktemp("pipeline")
    for name in ("stages", ".dvc", "dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "cache", "tmp"))
        else:
            shutil.copy(source, root / name)
    set_params(root, SMALL_PROFILE)
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "init"], root)
    output = dvc(root, "repro")
    assert stages_run(output) == ALL_STAGES
    return root


def test_every_output_is_written(repo: Path) -> None:
    raw = sorted(path.name for path in (repo / "data/raw").iterdir())
    assert raw == sorted(["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                          "t10k-labels-idx1-ubyte"])
    shapes = {name: np.load(repo / "data/prepared" / f"{name}_images.npy").shape for name in ("train", "val", "test")}
    assert shapes["train"][1:] == shapes["val"][1:] == shapes["test"][1:] == (28, 28, 1)
    assert shapes["train"][0] + shapes["val"][0] == 600 and 50 <= shapes["val"][0] <= 70
    assert shapes["test"][0] == 200

    model = load_model(repo / "models/model.keras")
    assert model.name == "compact"

    metrics = json.loads((repo / "metrics/evaluate.json").read_text())["test"]
    assert metrics["images"] == 200 and 0.0 <= metrics["accuracy"] <= 1.0 and metrics["loss"] > 0
    assert len((repo / "metrics/per_class.csv").read_text().splitlines()) == 11
    assert len((repo / "metrics/confusion.csv").read_text().splitlines()) == 201
    assert json.loads((repo / "metrics/train.json").read_text())["epochs_run"] == 1
    for curve in ("train/loss", "train/accuracy", "val/loss", "val/accuracy"):
        assert len((repo / f"metrics/training/plots/metrics/{curve}.tsv").read_text().splitlines()) == 2

    submission = (repo / "data/predictions/submission.csv").read_text().splitlines()
    assert submission[0] == "ImageId,Label" and len(submission) == 201
    assert submission[1].startswith("1,") and submission[-1].startswith("200,")
    for picture in ("metrics/misclassified.png", "metrics/predictions.png"):
        assert (repo / picture).read_bytes()[:4] == b"\x89PNG"


def test_metrics_show_prints_the_test_accuracy(repo: Path) -> None:
    assert "test.accuracy" in dvc(repo, "metrics", "show")


def test_a_second_repro_runs_nothing(repo: Path) -> None:
    output = dvc(repo, "repro")
    assert stages_run(output) == []
    assert "Data and pipelines are up to date." in dvc(repo, "status")


def test_a_predict_param_reruns_predict_alone(repo: Path) -> None:
    set_params(repo, {"predict": {"samples_shown": 8}})
    assert stages_run(dvc(repo, "repro")) == ["predict"]


def test_a_forced_rerun_reproduces_every_output(repo: Path) -> None:
    lock_before = (repo / "dvc.lock").read_text()
    pictures_before = [(repo / p).read_bytes() for p in ("metrics/misclassified.png", "metrics/predictions.png")]
    assert stages_run(dvc(repo, "repro", "--force")) == ALL_STAGES
    assert (repo / "dvc.lock").read_text() == lock_before
    assert [(repo / p).read_bytes() for p in ("metrics/misclassified.png", "metrics/predictions.png")] == pictures_before
