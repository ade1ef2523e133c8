"""The CI reproducibility gate: it names the stage and dependency of a stale dvc.lock."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.repro_check import check_lock_is_current, lock_differences, stale_entries
from tools.workspace import PROJECT_ROOT, make_workspace, set_params

OUTPUTS = {"data/raw", "data/prepared", "models/model.keras", "metrics/evaluate.json"}


def test_absent_data_is_not_staleness() -> None:
    status = {
        "preprocess": [{"changed deps": {"data/raw": "deleted"}}, {"changed outs": {"data/prepared": "not in cache"}}],
        "train": [{"changed deps": {"data/prepared/train_images.npy": "deleted"}}],
    }
    assert stale_entries(status, OUTPUTS) == []


def test_changed_code_params_and_metrics_are_named() -> None:
    status = {
        "train": [{"changed deps": {"stages/train.py": "modified", "params.yaml": {"train.epochs": "modified"}}}],
        "evaluate": [{"changed outs": {"metrics/evaluate.json": "modified"}}],
        "predict": ["changed command"],
    }
    assert stale_entries(status, OUTPUTS) == [
        "stage 'train': dependency stages/train.py modified since dvc.lock",
        "stage 'train': param train.epochs modified since dvc.lock",
        "stage 'evaluate': output metrics/evaluate.json modified: it is not what dvc.lock records",
        "stage 'predict': changed command since dvc.lock",
    ]


def test_a_deleted_code_file_is_staleness() -> None:
    status = {"fetch": [{"changed deps": {"stages/idx.py": "deleted"}}]}
    assert stale_entries(status, OUTPUTS) == ["stage 'fetch': dependency stages/idx.py deleted since dvc.lock"]


def test_lock_differences_name_stage_and_output() -> None:
    first = {"stages": {"train": {"outs": [{"path": "models/model.keras", "md5": "aa"}]}}}
    second = {"stages": {"train": {"outs": [{"path": "models/model.keras", "md5": "bb"}]}}}
    assert lock_differences(first, first) == []
    assert lock_differences(first, second) == ["stage 'train': models/model.keras (aa vs bb)"]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed pipeline and its committed dvc.lock, as on a fresh clone with no DVC cache."""
    root = make_workspace(tmp_path_factory.mktemp("clone"))
    shutil.copy(PROJECT_ROOT / "dvc.lock", root / "dvc.lock")
    return root


def test_the_committed_lock_matches_the_committed_code(clone: Path) -> None:
    assert check_lock_is_current(clone) == []


def test_a_stale_lock_is_caught_naming_stage_and_dependency(clone: Path) -> None:
    with (clone / "stages/predict.py").open("a") as file:
        file.write("# changed without rerunning the pipeline\n")
    set_params(clone, {"evaluate": {"batch_size": 512}})
    assert check_lock_is_current(clone) == [
        "stage 'evaluate': param evaluate.batch_size modified since dvc.lock",
        "stage 'predict': dependency stages/predict.py modified since dvc.lock",
    ]
