"""Lineage: what you change decides which stages `dvc repro` reruns; the rest are skipped.

The README's generated table (tools/lineage.py, from dvc.yaml) is checked whole: it must be what dvc.yaml
makes, and with every code file and params key of it changed, `dvc status` must name exactly each row's
stages; with every code file edited, the real `dvc repro` must give byte-identical outputs (so no edit
that changes no behaviour reruns anything after its own stages).

The examples below (the README's second table) each change one thing in their own copy of a repository
that is up to date (the small profile after one full `dvc repro`, cache included), run the real `dvc
repro` and check the stages that ran, so each stands alone and in any order. A stage whose outputs come
out byte-identical does not make the stages after it rerun: editing a comment in `stages/train.py`
reruns `train` alone, because the model it writes is the same file.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mnist_dvc.formats.idx import RAW_FILE_NAMES, read_idx
from mnist_dvc.splits import stratified_split
from tests.sources import kaggle_csv
from tools.lineage import lineage_rows
from tools.lineage import main as lineage_main
from tools.workspace import ALL_STAGES, dvc, run, set_params, stages_run

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
    ("an image added to predict.images", add_own_image, ["predict"]),
    (
        "fetch.max_test_images",
        params("fetch", "max_test_images", 150),
        ["fetch", "preprocess", "evaluate", "predict", "export"],
    ),
    # A chart's look never retrains the model: train imports no plotting code.
    ("mnist_dvc/reports/charts.py (no training)", edit_code("mnist_dvc/reports/charts.py"), ["evaluate", "predict"]),
    ("stages/train.py (same model out)", edit_code("stages/train.py"), ["train"]),
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


def test_switching_to_kaggle_csvs_reruns_every_stage_and_predicts_test_csv(repo: Path) -> None:
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


def run_git(repo: Path, *arguments: str) -> str:
    return run(["git", *arguments], repo)


def _another_value(value: Any) -> Any:
    """A value other than `value` (DVC compares params, it does not validate them)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, list):
        return [*value, "https://example.org/another/"]
    return f"{value}-changed"


def _stages_seeing(status: dict[str, list[Any]]) -> dict[str, set[str]]:
    """{changed code file or params key: the stages `dvc status --json` reports it changed for}."""
    seen: dict[str, set[str]] = {}
    for stage, entries in status.items():
        for entry in entries:
            for path, change in entry.get("changed deps", {}).items() if isinstance(entry, dict) else ():
                for item in change if path == "params.yaml" else [path]:
                    seen.setdefault(item, set()).add(stage)
    return seen


def test_the_readme_lineage_table_is_the_one_dvc_yaml_makes() -> None:
    assert lineage_main(["--check"]) == 0, "run `python -m tools.lineage --write`"


def test_every_file_and_key_of_the_lineage_table_reruns_exactly_its_rows_stages(repo: Path) -> None:
    """Every code file edited and every params key changed at once; DVC's own change detection (`dvc status`)
    must name, for each of them, exactly the stages of its row in the generated table."""
    rows = lineage_rows(yaml.safe_load((repo / "dvc.yaml").read_text()), repo)
    document = yaml.safe_load((repo / "params.yaml").read_text())
    for row in rows:
        for item in row.items:
            if row.kind == "code":
                edit_code(item)(repo)
            else:
                section, key = item.split(".")
                document[section][key] = _another_value(document[section][key])
    (repo / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    output = dvc(repo, "status", "--json")
    status, _end = json.JSONDecoder().raw_decode(output[output.index("{") :])
    seen = _stages_seeing(status)
    for row in rows:
        for item in row.items:
            assert tuple(stage for stage in ALL_STAGES if stage in seen.get(item, set())) == row.direct, item
    # Then the real `dvc repro` with only the code edits: every stage runs, and every output comes out
    # byte-identical. So any one of those edits alone reruns exactly its row's stages and nothing after them.
    run_git(repo, "checkout", "params.yaml")
    outputs_before = _output_hashes(repo)
    assert stages_run(dvc(repo, "repro")) == list(ALL_STAGES)
    assert _output_hashes(repo) == outputs_before
    assert "Data and pipelines are up to date." in dvc(repo, "status")


def _output_hashes(repo: Path) -> dict[str, str]:
    """{output path: md5} of every output dvc.lock records."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}
