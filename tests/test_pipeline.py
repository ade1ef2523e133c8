"""The real `dvc repro`, in a temporary git repository, on a small profile of the real data.

Checks every output and that a second run does nothing. What reruns after each kind of change is
`tests/test_lineage.py`; that another machine's run gives byte-identical outputs, and that the
committed dvc.lock is what the code makes, is `tests/test_verify.py` and `make verify`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mnist_dvc.model.files import load_model
from tools.workspace import dvc, stages_run

pytestmark = pytest.mark.slow


@pytest.fixture
def repo(small_pipeline: Path) -> Path:
    """A fresh git + DVC repository holding the project, with the small profile, after one `dvc repro`."""
    return small_pipeline


def test_every_output_is_written(repo: Path) -> None:
    raw = sorted(path.name for path in (repo / "data/raw").iterdir())
    assert raw == sorted(
        [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
            "predict-images-idx3-ubyte",
        ]
    )
    shapes = {name: np.load(repo / "data/prepared" / f"{name}_images.npy").shape for name in ("train", "val", "test")}
    assert shapes["train"][1:] == shapes["val"][1:] == shapes["test"][1:] == (28, 28, 1)
    assert shapes["train"][0] + shapes["val"][0] == 600 and 50 <= shapes["val"][0] <= 70
    assert shapes["test"][0] == 200
    # With MNIST, the images to predict are the test images.
    np.testing.assert_array_equal(
        np.load(repo / "data/prepared/predict_images.npy"), np.load(repo / "data/prepared/test_images.npy")
    )

    model = load_model(repo / "models/model.keras")
    assert model.name == "compact"

    metrics = json.loads((repo / "metrics/evaluate.json").read_text())["test"]
    assert metrics["images"] == 200 and 0.0 <= metrics["accuracy"] <= 1.0 and metrics["loss"] > 0
    assert len((repo / "metrics/per_class.csv").read_text().splitlines()) == 11
    assert len((repo / "metrics/confusion.csv").read_text().splitlines()) == 201
    # params.yaml's final model trains on the validation images too: no validation score, empty val curves
    assert json.loads((repo / "metrics/train.json").read_text()) == {
        "epochs_run": 1,
        "kept_epoch": 1,
        "training_images": 600,
    }
    for curve in ("train/loss", "train/accuracy"):
        assert len((repo / f"metrics/training/plots/metrics/{curve}.tsv").read_text().splitlines()) == 2
    for curve in ("val/loss", "val/accuracy"):
        assert len((repo / f"metrics/training/plots/metrics/{curve}.tsv").read_text().splitlines()) == 1

    submission = (repo / "data/predictions/submission.csv").read_text().splitlines()
    assert submission[0] == "ImageId,Label" and len(submission) == 201
    assert submission[1].startswith("1,") and submission[-1].startswith("200,")
    for picture in ("metrics/misclassified.png", "metrics/predictions.png"):
        assert (repo / picture).read_bytes()[:4] == b"\x89PNG"


def test_metrics_show_prints_the_test_accuracy_and_the_recipes_validation(repo: Path) -> None:
    shown = dvc(repo, "metrics", "show")
    assert "test.accuracy" in shown and "val_accuracy_mean" in shown and "training_images" in shown


def test_a_second_repro_runs_nothing(repo: Path) -> None:
    output = dvc(repo, "repro")
    assert stages_run(output) == []
    assert "Data and pipelines are up to date." in dvc(repo, "status")
