"""Faults during a run: each stage really killed (SIGKILL or SIGTERM) inside its run, at a known point.

The stages hold, at a test's request, at the moment their outputs are written to temporaries and about to
move into place (`mnist_dvc.atomic_files.HOLD_BEFORE_MOVE_VARIABLE`): the test waits for that, so every kill
lands inside the stage on any machine, however fast, and at the point where a half-written output would
show. What must hold afterwards, for every stage: no output is half-written (each output file present is
byte-identical to the one the uninterrupted run wrote), and the next `dvc repro` completes with
byte-identical outputs, no temporaries left, and exactly the committed dvc.lock again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mnist_dvc.atomic_files import HOLD_BEFORE_MOVE_VARIABLE
from tools.lineage import stage_dependencies
from tools.repair_after_kill import heal_dvc_lock, heal_rwlock, no_rwlock_writer, remove_killed_temporaries
from tools.workspace import ALL_STAGES, PROJECT_ROOT, CommandFailed, dvc, run, stages_run

# Each signal on half of the stages, the same every run: SIGKILL (nothing of the stage's clean-up runs)
# and SIGTERM (the stage unwinds and removes its temporaries).
SIGNALS = {stage: (signal.SIGKILL, signal.SIGTERM)[index % 2] for index, stage in enumerate(ALL_STAGES)}
# How long a stage of the small profile may take to reach its outputs (the slowest, train and export, take
# about 10 s here); past it the test fails, saying the stage never got there.
REACH_SECONDS = 300.0


def stage_outputs(repo: Path, stage: str) -> list[str]:
    """Every path `stage` writes: its outs, metrics and plots, as dvc.yaml declares them."""
    return stage_dependencies(yaml.safe_load((repo / "dvc.yaml").read_text()))[stage]["outs"]


def files_under(root: Path, relative: str) -> dict[str, bytes]:
    """{path relative to root: bytes} of the file `relative`, or of every file under the folder `relative`."""
    path = root / relative
    if path.is_file():
        return {relative: path.read_bytes()}
    if path.is_dir():
        return {
            str(child.relative_to(root)): child.read_bytes() for child in sorted(path.rglob("*")) if child.is_file()
        }
    return {}


def kill_when_held(repo: Path, stage: str, signal_number: int, hold_folder: Path) -> tuple[str, list[str]]:
    """Run `dvc repro --force --single-item stage`, wait until the stage holds before moving its outputs into
    place, and send `signal_number` to the whole process group (DVC and the stage). Return what DVC printed
    and {output path: the temporary it held, unmoved}; fail if it never held."""
    hold_folder.mkdir(parents=True)
    command = [str(Path(sys.executable).parent / "dvc"), "repro", "--force", "--single-item", stage]
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        HOLD_BEFORE_MOVE_VARIABLE: str(hold_folder),
    }
    with (hold_folder.parent / f"{stage}.log").open("w+") as log:
        process = subprocess.Popen(
            command, cwd=repo, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + REACH_SECONDS
        while not (held := list(hold_folder.glob("held-*"))) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None:
            os.killpg(process.pid, signal_number)
        process.wait(timeout=120)
        log.seek(0)
        output = log.read() + f"\n[exit status {process.returncode}]"
    assert held, f"{stage} never reached the moment its outputs move into place (within {REACH_SECONDS} s)\n{output}"
    # A stage's writes that were still in flight finish before the file is read: it was written before the hold.
    return output, dict(line.split("\t") for line in held[0].read_text().splitlines())


@pytest.mark.slow
def test_each_stage_killed_inside_its_run_leaves_no_half_written_output_and_reruns_to_the_same_bytes(
    small_pipeline: Path, tmp_path: Path
) -> None:
    repo = Path(shutil.copytree(small_pipeline, tmp_path / "repo", symlinks=True))
    summary: list[str] = []
    for stage in ALL_STAGES:
        signal_number = SIGNALS[stage]
        context = f"{stage} sent {signal.Signals(signal_number).name} while holding its outputs"
        output, held_outputs = kill_when_held(repo, stage, signal_number, tmp_path / "hold" / stage)
        # The kill landed inside the stage: DVC reports the stage failed, and it held with all its outputs.
        assert "[exit status 0]" not in output, f"{context}: the run finished anyway\n{output}"
        declared = stage_outputs(repo, stage)
        assert sorted(held_outputs) == sorted(declared), f"{context}: held with {held_outputs}, declared {declared}"
        # ...and before any output moved. DVC removes a stage's outputs before running it, so an output
        # present now whose temporary is gone was moved into place: the kill came too late. (A temporary
        # gone with no output is the stage's own clean-up on SIGTERM.)
        moved = [
            path
            for path, temporary in held_outputs.items()
            if (repo / path).exists() and not (repo / temporary).exists()
        ]
        assert moved == [], f"{context}: the kill landed after {moved} moved into place\n{output}"
        for relative in declared:
            reference = files_under(small_pipeline, relative)
            for path, content in files_under(repo, relative).items():
                assert path in reference, f"{context}: left {path}, which the run does not write\n{output}"
                assert content == reference[path], f"{context}: left {path} half-written\n{output}"
        # What `make repro` does first: a lock table or dvc.lock cut by a kill is healed, temporaries removed.
        healed = [what for what in (heal_rwlock(repo), heal_dvc_lock(repo), remove_killed_temporaries(repo)) if what]
        # Without the run-cache, so that the stage really runs again rather than being restored; a failure
        # (a stale lock, a leftover DVC cannot handle) raises with DVC's output.
        rerun = dvc(repo, "repro", "--no-run-cache")
        summary.append(
            f"{context}: killed it; {'; '.join(healed) + '; ' if healed else ''}rerun ran {stages_run(rerun)}"
        )
        assert run(["git", "status", "--porcelain"], repo) == "", f"{context}: dvc.lock or outputs changed\n{rerun}"
        for relative in declared:
            assert files_under(repo, relative) == files_under(small_pipeline, relative), f"{context}: {relative}"
            leftovers = [
                path.name
                for path in (repo / relative).parent.glob(".*")
                if ".tmp" in path.name or path.name.endswith(".old")
            ]
            assert leftovers == [], f"{context}: the rerun left the killed run's temporaries {leftovers}"
    print("\n".join(summary))


@pytest.mark.slow
def test_a_dvc_lock_cut_mid_write_is_restored_before_the_rerun(small_pipeline: Path, tmp_path: Path) -> None:
    """DVC rewrites dvc.lock in place: cut by a kill, it is not a whole lock file and DVC refuses every command.
    tools.repair_after_kill (run by `make repro`) restores the committed one, and the pipeline is up to date again."""
    repo = Path(shutil.copytree(small_pipeline, tmp_path / "repo", symlinks=True))
    lock = repo / "dvc.lock"
    committed = lock.read_bytes()
    lock.write_bytes(committed[: committed.index(b"md5:") + 9])  # what a kill mid-write leaves
    with pytest.raises(CommandFailed):
        dvc(repo, "status")
    healed = run([sys.executable, "-m", "tools.repair_after_kill", "--repo", str(repo)], PROJECT_ROOT)
    assert "dvc.lock: was cut" in healed and lock.read_bytes() == committed
    assert "Data and pipelines are up to date." in dvc(repo, "status")
    assert heal_dvc_lock(repo) is None  # a readable dvc.lock is never touched
    # Outside git's reach, it is named with what to do, and left alone.
    shutil.rmtree(repo / ".git")
    lock.write_bytes(committed[:40])
    with pytest.raises(CommandFailed, match=r"dvc.lock: expected DVC's lock file.*delete it and run `make repro`"):
        run([sys.executable, "-m", "tools.repair_after_kill", "--repo", str(repo)], PROJECT_ROOT)


@pytest.mark.slow
def test_a_lock_table_cut_by_a_kill_is_removed_so_that_dvc_runs_again(small_pipeline: Path, tmp_path: Path) -> None:
    """DVC rewrites .dvc/tmp/rwlock in place: killed inside that write, it leaves the file cut, and DVC then
    refuses every command. tools.repair_after_kill (run by `make repro`) removes it, unless a DVC process is
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
    healed = run([sys.executable, "-m", "tools.repair_after_kill", "--repo", str(repo)], PROJECT_ROOT)
    assert "removed an unreadable DVC lock table (32 bytes)" in healed and not rwlock.exists()
    assert "Data and pipelines are up to date." in dvc(repo, "status")
    assert heal_rwlock(repo) is None  # a readable (or no) table is never touched
