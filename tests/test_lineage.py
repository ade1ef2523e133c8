"""Lineage: what you change decides which stages `dvc repro` reruns; the rest are skipped.

Each row changes one thing in a repository that is up to date, runs the real `dvc repro` and checks
the stages that ran. Rows run in order, each starting where the previous one left off. The README's
lineage table is this list. A stage whose outputs come out byte-identical does not make the stages
after it rerun: editing a comment in `stages/train.py` reruns `train` alone, because the model it
writes is the same file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tools.workspace import ALL_STAGES, SMALL_PROFILE, dvc, make_workspace, set_params, stages_run

pytestmark = pytest.mark.slow

Change = Callable[[Path], None]


def params(section: str, key: str, value: object) -> Change:
    return lambda repo: set_params(repo, {section: {key: value}})


def edit_code(relative: str) -> Change:
    def append_comment(repo: Path) -> None:
        with (repo / relative).open("a") as file:
            file.write("# an edit that changes no behaviour\n")

    return append_comment


LINEAGE: list[tuple[str, Change, list[str]]] = [
    ("nothing", lambda repo: None, []),
    ("predict.* (e.g. samples_shown)", params("predict", "samples_shown", 8), ["predict"]),
    ("evaluate.* (e.g. max_misclassified_shown)", params("evaluate", "max_misclassified_shown", 10), ["evaluate"]),
    ("train.* (e.g. learning_rate)", params("train", "learning_rate", 0.002), ["train", "evaluate", "predict"]),
    ("preprocess.* (e.g. random_seed)", params("preprocess", "random_seed", 1),
     ["preprocess", "train", "evaluate", "predict"]),
    ("fetch.max_test_images", params("fetch", "max_test_images", 150), ["fetch", "preprocess", "evaluate", "predict"]),
    ("fetch.max_train_images", params("fetch", "max_train_images", 500), list(ALL_STAGES)),
    ("stages/predict.py", edit_code("stages/predict.py"), ["predict"]),
    ("stages/evaluate.py", edit_code("stages/evaluate.py"), ["evaluate"]),
    ("stages/digit_grids.py", edit_code("stages/digit_grids.py"), ["evaluate", "predict"]),
    ("stages/train.py (same model out)", edit_code("stages/train.py"), ["train"]),
    ("stages/models.py", edit_code("stages/models.py"), ["train", "evaluate", "predict"]),
    ("stages/fetch.py (same data out)", edit_code("stages/fetch.py"), ["fetch"]),
    ("stages/preprocess.py", edit_code("stages/preprocess.py"), ["preprocess", "train", "evaluate", "predict"]),
    ("stages/idx.py (shared by all)", edit_code("stages/idx.py"), list(ALL_STAGES)),
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_workspace(tmp_path_factory.mktemp("lineage"), SMALL_PROFILE)
    assert stages_run(dvc(root, "repro")) == list(ALL_STAGES)
    return root


@pytest.mark.parametrize(("change", "apply", "expected"), LINEAGE, ids=[row[0] for row in LINEAGE])
def test_a_change_reruns_exactly_its_stages(repo: Path, change: str, apply: Change, expected: list[str]) -> None:
    apply(repo)
    assert stages_run(dvc(repo, "repro")) == expected, change
    assert "Data and pipelines are up to date." in dvc(repo, "status")


def test_raw_data_edited_by_hand_is_restored_from_the_cache(repo: Path) -> None:
    path = repo / "data/raw/train-labels-idx1-ubyte"
    original = path.read_bytes()
    edited = bytearray(original)
    edited[-1] = (edited[-1] + 1) % 10
    path.write_bytes(bytes(edited))
    assert "fetch" in dvc(repo, "status")
    output = dvc(repo, "repro")
    # fetch's command, code and params are unchanged, so DVC's run cache restores its outputs
    # instead of running it, and nothing after it sees a change.
    assert stages_run(output) == []
    assert "Stage 'fetch' is cached - skipping run, checking out outputs" in output
    assert path.read_bytes() == original
