"""`make repro` (tools/repro.py): a first run that reads clean and ends with a summary taken from metrics/."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.remote import Remote
from tools.repro import duration, remote_may_hold_outputs, summary_lines
from tools.workspace import ALL_STAGES, PROJECT_ROOT, SMALL_PROFILE, make_workspace


def test_the_summary_says_what_the_committed_metrics_say() -> None:
    """Every figure of the summary comes from metrics/ (compared here with the files, not with a copy)."""
    evaluate = json.loads((PROJECT_ROOT / "metrics/evaluate.json").read_text())["test"]
    train = json.loads((PROJECT_ROOT / "metrics/train.json").read_text())
    export = json.loads((PROJECT_ROOT / "metrics/export.json").read_text())
    lines = summary_lines(PROJECT_ROOT, 412.4, ["train", "evaluate"])
    assert lines[0] == "Done in 6 min 52 s (ran: train, evaluate)."
    assert f"{100 * evaluate['accuracy']:.2f}%" in lines[1] and f"{evaluate['errors']} errors" in lines[1]
    if "val_accuracy" in train:
        assert f"{100 * train['val_accuracy']:.2f}%" in lines[2]
    else:  # trained on the validation images too: the validation figure is that of the runs that chose the recipe
        chosen = json.loads((PROJECT_ROOT / "bench/recipe_validation.json").read_text())
        assert "none (trained on all" in lines[2] and f"{100 * chosen['val_accuracy_mean']:.2f}%" in lines[2]
    assert f"{100 * export['litert_int8']['test_accuracy']:.2f}%" in lines[3]
    assert "PNGs in metrics/: misclassified," in lines[4] and "own_digits" in lines[4] + lines[5]
    assert lines[-2].startswith("  charts          .venv/bin/dvc plots")
    assert lines[-1].endswith("dvc metrics show")
    assert max(len(line) for line in lines) <= 120  # a glance, not a table wider than the terminal
    assert summary_lines(PROJECT_ROOT, 41, [])[0] == "Done in 41 s (every stage was up to date)."
    assert duration(59.6) == "1 min 0 s"


def test_pull_only_where_the_remote_may_hold_outputs(tmp_path: Path) -> None:
    folder = tmp_path / "remote"
    assert not remote_may_hold_outputs(tmp_path, None)
    assert not remote_may_hold_outputs(tmp_path, Remote("local", str(folder)))  # a new machine: no folder yet
    (folder / "files/md5").mkdir(parents=True)
    assert not remote_may_hold_outputs(tmp_path, Remote("local", str(folder)))  # created, nothing pushed
    (folder / "files/md5/ab").mkdir()
    (folder / "files/md5/ab/cdef").write_bytes(b"an output")
    assert remote_may_hold_outputs(tmp_path, Remote("local", str(folder)))
    (tmp_path / ".dvc").mkdir()
    assert remote_may_hold_outputs(tmp_path, Remote("local", "../remote"))  # relative to .dvc/, as DVC reads it
    assert remote_may_hold_outputs(tmp_path, Remote("team", "s3://bucket/mnist"))


@pytest.mark.slow
def test_a_first_run_reads_clean_and_ends_with_the_summary(tmp_path: Path) -> None:
    """A new clone (small profile) whose default remote is empty: no pull warnings, no native start-up noise, and
    the summary as the last lines; a second run pulls nothing and reruns nothing."""
    repo = make_workspace(tmp_path / "repo", SMALL_PROFILE)
    command = [sys.executable, "-m", "tools.repro", "--repo", str(repo)]
    first = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    output = first.stdout + first.stderr
    assert first.returncode == 0, output
    for noise in (
        "Unable to pull",
        "absl::InitializeLog",
        "oneDNN custom operations",
        "NodeDef mentions",
        "fully_quantize",
        "XNNPACK",
        "Traceback",
    ):
        assert noise not in output, f"{noise!r} in the first run's output:\n{output}"
    assert re.search(r"^Done in .*\(ran: " + ", ".join(ALL_STAGES) + r"\)\.$", output, flags=re.MULTILINE), output
    accuracy = json.loads((repo / "metrics/evaluate.json").read_text())["test"]["accuracy"]
    assert f"test accuracy   {accuracy:.2%}" in output
    assert first.stdout.rstrip().endswith("every metric    .venv/bin/dvc metrics show")
    assert "pushed to remote 'local'" in output
    again = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert "(every stage was up to date)" in again.stdout and "Unable to pull" not in again.stdout + again.stderr
