"""Lineage: what you change decides which stages `dvc repro` reruns; the rest are skipped.

Each row changes one thing in its own copy of a repository that is up to date (the small profile after
one full `dvc repro`, cache included), runs the real `dvc repro` and checks the stages that ran, so each
row stands alone and in any order. The README's lineage table is this list. A stage whose outputs come out byte-identical does not make the stages
after it rerun: editing a comment in `stages/train.py` reruns `train` alone, because the model it
writes is the same file.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mnist_dvc.formats.idx import RAW_FILE_NAMES, read_idx
from mnist_dvc.splits import stratified_split
from tests.sources import kaggle_csv
from tools.workspace import ALL_STAGES, dvc, set_params, stages_run

pytestmark = pytest.mark.slow

Change = Callable[[Path], None]


def params(section: str, key: str, value: object) -> Change:
    return lambda repo: set_params(repo, {section: {key: value}})


def edit_code(relative: str) -> Change:
    def append_comment(repo: Path) -> None:
        with (repo / relative).open("a") as file:
            file.write("# an edit that changes no behaviour\n")

    return append_comment


def add_own_image(repo: Path) -> None:
    first = sorted((repo / "data/own_digits").iterdir())[0]
    shutil.copy(first, repo / "data/own_digits" / f"another{first.suffix}")


def switch_to_idx_copy(repo: Path) -> None:
    """Put the raw IDX files fetch wrote into data/external (two of them gzipped) and read them from there."""
    for position, name in enumerate(RAW_FILE_NAMES[:4]):
        payload = (repo / "data/raw" / name).read_bytes()
        if position % 2:
            (repo / "data/external" / f"{name}.gz").write_bytes(gzip.compress(payload, mtime=0))
        else:
            (repo / "data/external" / name).write_bytes(payload)
    set_params(repo, {"fetch": {"source": "idx"}})


def add_note_to_external(repo: Path) -> None:
    (repo / "data/external/NOTES.txt").write_text("where these files came from\n")


def switch_to_kaggle_csvs(repo: Path) -> None:
    """Kaggle-format train.csv (the raw training images, labelled) and test.csv (the raw test images, unlabelled)."""
    train_images = read_idx(repo / "data/raw" / RAW_FILE_NAMES[0], 3)
    train_labels = read_idx(repo / "data/raw" / RAW_FILE_NAMES[1], 1)
    (repo / "data/external/train.csv").write_bytes(kaggle_csv(train_images, train_labels))
    (repo / "data/external/test.csv").write_bytes(kaggle_csv(read_idx(repo / "data/raw" / RAW_FILE_NAMES[2], 3), None))
    set_params(repo, {"fetch": {"source": "kaggle"}})


LINEAGE: list[tuple[str, Change, list[str]]] = [
    ("nothing", lambda repo: None, []),
    ("predict.* (e.g. samples_shown)", params("predict", "samples_shown", 8), ["predict"]),
    ("an image added to predict.images", add_own_image, ["predict"]),
    ("evaluate.* (e.g. max_misclassified_shown)", params("evaluate", "max_misclassified_shown", 10), ["evaluate"]),
    ("train.* (e.g. learning_rate)", params("train", "learning_rate", 0.002), ["train", "evaluate", "predict"]),
    ("compute.* (e.g. threads)", params("compute", "threads", 1), ["train", "evaluate", "predict"]),
    ("preprocess.* (e.g. random_seed)", params("preprocess", "random_seed", 1),
     ["preprocess", "train", "evaluate", "predict"]),
    ("fetch.max_test_images", params("fetch", "max_test_images", 150), ["fetch", "preprocess", "evaluate", "predict"]),
    ("fetch.max_train_images", params("fetch", "max_train_images", 500), list(ALL_STAGES)),
    ("stages/predict.py", edit_code("stages/predict.py"), ["predict"]),
    ("stages/evaluate.py", edit_code("stages/evaluate.py"), ["evaluate"]),
    ("mnist_dvc/reports/digit_grids.py", edit_code("mnist_dvc/reports/digit_grids.py"), ["evaluate", "predict"]),
    # A chart's look never retrains the model: train imports no plotting code.
    ("mnist_dvc/reports/charts.py (no training)", edit_code("mnist_dvc/reports/charts.py"), ["evaluate", "predict"]),
    ("stages/train.py (same model out)", edit_code("stages/train.py"), ["train"]),
    ("mnist_dvc/model/architectures.py", edit_code("mnist_dvc/model/architectures.py"), ["train", "evaluate", "predict"]),
    ("stages/fetch.py (same data out)", edit_code("stages/fetch.py"), ["fetch"]),
    ("stages/preprocess.py (same arrays out)", edit_code("stages/preprocess.py"), ["preprocess"]),
    ("mnist_dvc/formats/idx.py (fetch and preprocess read IDX)", edit_code("mnist_dvc/formats/idx.py"),
     ["fetch", "preprocess"]),
    ("mnist_dvc/errors.py (shared by all)", edit_code("mnist_dvc/errors.py"), list(ALL_STAGES)),
    ("fetch.source: idx, holding the same images", switch_to_idx_copy, ["fetch"]),
    ("a new file in fetch.local_path (data/external)", add_note_to_external, ["fetch"]),
]


@pytest.fixture
def repo(small_pipeline: Path, tmp_path: Path) -> Path:
    """A copy of the up-to-date small-profile repository, DVC cache and run-cache included."""
    return Path(shutil.copytree(small_pipeline, tmp_path / "repo", symlinks=True))


@pytest.mark.parametrize(("change", "apply", "expected"), LINEAGE, ids=[row[0] for row in LINEAGE])
def test_a_change_reruns_exactly_its_stages(repo: Path, change: str, apply: Change, expected: list[str]) -> None:
    apply(repo)
    assert stages_run(dvc(repo, "repro")) == expected, change
    assert "Data and pipelines are up to date." in dvc(repo, "status")


def test_switching_to_kaggle_csvs_reruns_all_five_and_predicts_test_csv(repo: Path) -> None:
    """fetch.source: kaggle, with Kaggle-format CSVs of the small profile's raw data: 600 labelled rows
    in train.csv and 200 unlabelled in test.csv."""
    labels = read_idx(repo / "data/raw" / RAW_FILE_NAMES[1], 1)
    _, held_out = stratified_split(labels, 0.1, 0, key="fetch.kaggle_holdout_size")  # the params' defaults
    switch_to_kaggle_csvs(repo)
    assert stages_run(dvc(repo, "repro")) == list(ALL_STAGES)
    submission = (repo / "data/predictions/submission.csv").read_text().splitlines()
    assert submission[0] == "ImageId,Label" and len(submission) == 201
    rows = [line.split(",") for line in submission[1:]]
    assert [int(image_id) for image_id, _ in rows] == list(range(1, 201))
    assert all(label in "0123456789" and len(label) == 1 for _, label in rows)
    # The labelled test set is the stratified 10% hold-out of train.csv.
    assert json.loads((repo / "metrics/evaluate.json").read_text())["test"]["images"] == len(held_out) == 59


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
