"""Faults during a run: each stage really killed (SIGKILL or SIGTERM) at a random moment of its run.

What must hold afterwards, for every stage: no output is half-written (each output file present is
byte-identical to the one the uninterrupted run wrote, and no temporary file is left in an output
folder), and the next `dvc repro` completes and gives exactly the committed dvc.lock again.
The signals and moments are drawn from a seed printed at the start (rerun one with MNIST_FAULT_SEED=N).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tools.dvc_state import heal_rwlock, no_rwlock_writer
from tools.lineage import stage_dependencies
from tools.workspace import ALL_STAGES, PROJECT_ROOT, CommandFailed, dvc, run, stages_run

# How long after DVC says "Running stage" the kill may come: up to a little past each stage's usual
# length on the small profile, so that some kills land after the stage's end (the run then simply finishes).
LATEST_KILL_SECONDS = {"fetch": 5.0, "preprocess": 4.0, "train": 12.0, "evaluate": 6.0, "predict": 5.0, "export": 12.0}


def stage_outputs(repo: Path, stage: str) -> list[str]:
    """Every path `stage` writes: its outs, metrics and plots, as dvc.yaml declares them."""
    return stage_dependencies(yaml.safe_load((repo / "dvc.yaml").read_text()))[stage]["outs"]


def files_under(root: Path, relative: str) -> dict[str, bytes]:
    """{path relative to root: bytes} of the file `relative`, or of every file under the folder `relative`."""
    path = root / relative
    if path.is_file():
        return {relative: path.read_bytes()}
    if path.is_dir():
        return {str(child.relative_to(root)): child.read_bytes() for child in sorted(path.rglob("*")) if child.is_file()}
    return {}


def kill_during(repo: Path, stage: str, signal_number: int, delay: float) -> str:
    """Run `dvc repro --force --single-item stage` and send `signal_number` to its whole process group (DVC
    and the stage) `delay` seconds after DVC starts the stage; return what it printed."""
    command = [str(Path(sys.executable).parent / "dvc"), "repro", "--force", "--single-item", stage]
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen(command, cwd=repo, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    assert process.stdout is not None
    started = threading.Event()
    lines: list[str] = []

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if f"Running stage '{stage}'" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started.wait(timeout=120)
    time.sleep(delay)
    if process.poll() is None:
        os.killpg(process.pid, signal_number)
    process.wait(timeout=120)
    reader.join(timeout=10)
    return "".join(lines) + f"\n[exit status {process.returncode}]"


@pytest.mark.slow
def test_each_stage_killed_at_a_random_moment_leaves_no_half_written_output_and_reruns_to_the_same_bytes(
        small_pipeline: Path, tmp_path: Path) -> None:
    seed = int(os.environ.get("MNIST_FAULT_SEED", random.randrange(2**32)))
    print(f"MNIST_FAULT_SEED={seed}")
    draw = random.Random(seed)
    repo = Path(shutil.copytree(small_pipeline, tmp_path / "repo", symlinks=True))
    summary: list[str] = []
    for stage in ALL_STAGES:
        signal_number = draw.choice([signal.SIGKILL, signal.SIGTERM])
        delay = draw.uniform(0.0, LATEST_KILL_SECONDS[stage])
        context = f"seed {seed}: {stage} sent {signal.Signals(signal_number).name} after {delay:.1f} s"
        output = kill_during(repo, stage, signal_number, delay)
        for relative in stage_outputs(repo, stage):
            reference = files_under(small_pipeline, relative)
            for path, content in files_under(repo, relative).items():
                assert path in reference, f"{context}: left {path}, which the run does not write\n{output}"
                assert content == reference[path], f"{context}: left {path} half-written\n{output}"
        # What `make repro` does first: a lock table cut by the kill (DVC rewrites it in place) is removed.
        healed = heal_rwlock(repo)
        # Without the run-cache, so that the stage really runs again rather than being restored; a failure
        # (a stale lock, a leftover DVC cannot handle) raises with DVC's output.
        rerun = dvc(repo, "repro", "--no-run-cache")
        landed = "[exit status 0]" not in output
        summary.append(f"{context}: {'killed it' if landed else 'came after its end'}; "
                       f"{'healed a cut lock table; ' if healed else ''}rerun ran {stages_run(rerun) or 'nothing'}")
        assert run(["git", "status", "--porcelain"], repo) == "", f"{context}: dvc.lock or outputs changed\n{rerun}"
        for relative in stage_outputs(repo, stage):
            assert files_under(repo, relative) == files_under(small_pipeline, relative), f"{context}: {relative}"
            leftovers = [path.name for path in (repo / relative).parent.glob(".*") if ".tmp" in path.name or
                         path.name.endswith(".old")]
            assert leftovers == [], f"{context}: the rerun left the killed run's temporaries {leftovers}"
    print("\n".join(summary))


@pytest.mark.slow
def test_a_lock_table_cut_by_a_kill_is_removed_so_that_dvc_runs_again(small_pipeline: Path, tmp_path: Path) -> None:
    """DVC rewrites .dvc/tmp/rwlock in place: killed inside that write, it leaves the file cut, and DVC then
    refuses every command. tools.dvc_state (run by `make repro`) removes it, unless a DVC process is
    writing it at that moment."""
    repo = Path(shutil.copytree(small_pipeline, tmp_path / "repo", symlinks=True))
    rwlock = repo / ".dvc/tmp/rwlock"
    rwlock.parent.mkdir(parents=True, exist_ok=True)
    rwlock.write_text('{"read": {"data/raw": [{"pid": 4')  # what a kill mid-write leaves
    with pytest.raises(CommandFailed, match="Unable to read RWLock-file"):
        dvc(repo, "status")
    with no_rwlock_writer(repo) as idle:  # a DVC process writing the table holds this flock
        assert idle
        assert heal_rwlock(repo) is None  # busy (here: held by this test), so left alone
    assert rwlock.exists()
    healed = run([sys.executable, "-m", "tools.dvc_state", "--repo", str(repo)], PROJECT_ROOT)
    assert "removed an unreadable DVC lock table (32 bytes)" in healed and not rwlock.exists()
    assert "Data and pipelines are up to date." in dvc(repo, "status")
    assert heal_rwlock(repo) is None  # a readable (or no) table is never touched
