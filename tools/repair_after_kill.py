"""Healing what a killed `dvc` leaves behind, so that the next `dvc repro` runs.

DVC 3.67.1 rewrites its lock table `.dvc/tmp/rwlock` in place (opened with truncation, then written:
`dvc/rwlock.py`). A `dvc` killed inside that write (SIGKILL, an OOM kill, a CI timeout) leaves it
empty or cut short, and every later DVC command in the repository stops with "Unable to read
RWLock-file '.dvc/tmp/rwlock'. JSON structure is corrupted". Every write of it happens under the
flock of `.dvc/tmp/rwlock.lock`; holding that flock, an unreadable table is no write in progress but
what a killed writer left, and it records nothing any DVC process can use (none can read it), so it is
removed: DVC then starts a new one, as it does when the file is missing, and itself drops the entries
of killed processes from a readable one.

DVC also rewrites `dvc.lock` in place after each stage. Cut by a kill, it is no longer YAML and every
DVC command stops; the committed `dvc.lock` is then put back from git (the stages whose outputs differ
from it rerun, as after any change), or, outside a git repository, the file is named with what to do.
`make repro` runs this first.

    .venv/bin/python -m tools.repair_after_kill [--repo PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from mnist_dvc.atomic_files import remove_leftovers
from tools.lineage import stage_dependencies
from tools.workspace import PROJECT_ROOT

_WHOLE_MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")


@contextlib.contextmanager
def no_rwlock_writer(repo: Path) -> Iterator[bool]:
    """Yield whether no DVC process is writing the lock table; while True, none can start to."""
    lock_path = repo / ".dvc/tmp/rwlock.lock"
    if not lock_path.exists():
        yield True
        return
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def heal_rwlock(repo: Path) -> str | None:
    """Remove `repo`'s unreadable `.dvc/tmp/rwlock` (none writing it); say what was done, None if nothing."""
    rwlock = repo / ".dvc/tmp/rwlock"
    with no_rwlock_writer(repo) as idle:
        if not idle or not rwlock.is_file():
            return None
        try:
            json.loads(rwlock.read_text(encoding="utf-8"))
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            size = rwlock.stat().st_size
            rwlock.unlink()
            return (
                f"{rwlock}: removed an unreadable DVC lock table ({size} bytes), left by a dvc process killed "
                "while writing it"
            )


def lock_is_whole(text: str) -> bool:
    """Whether a dvc.lock text is one DVC wrote to its end: YAML ending in a newline, each stage with its command,
    each dependency and output with its path and a whole md5. (A file cut at a line's end after a whole entry
    passes: DVC reads it, and reruns the stages it lacks.)"""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    if not text.endswith("\n") or not isinstance(document, dict) or not isinstance(document.get("stages"), dict):
        return False
    for stage in document["stages"].values():
        if not isinstance(stage, dict) or "cmd" not in stage:
            return False
        for entry in [*stage.get("deps", []), *stage.get("outs", [])]:
            if not isinstance(entry, dict) or "path" not in entry or not _WHOLE_MD5.fullmatch(str(entry.get("md5"))):
                return False
    return True


def heal_dvc_lock(repo: Path) -> str | None:
    """Put back `repo`'s committed `dvc.lock` when the file there was cut by a kill mid-write (see `lock_is_whole`);
    say what was done, None if nothing. Raises `RuntimeError` naming the file and the fix when git cannot
    restore it."""
    lock = repo / "dvc.lock"
    if not lock.is_file():
        return None
    try:
        if lock_is_whole(lock.read_text(encoding="utf-8")):
            return None
    except UnicodeDecodeError:
        pass
    size = lock.stat().st_size
    restored = subprocess.run(
        ["git", "checkout", "--", "dvc.lock"], cwd=repo, capture_output=True, text=True, check=False
    )
    if restored.returncode != 0:
        raise RuntimeError(
            f"{lock}: expected DVC's lock file. Received: {size} bytes that are not a whole lock file "
            "(a dvc process killed while writing it?), and git could not restore it "
            f"({restored.stderr.strip()}); delete it and run `make repro`, which reruns every stage"
        )
    return (
        f"{lock}: was cut ({size} bytes, not a whole lock file: a dvc process killed while writing it); restored the "
        "committed one from git (stages whose outputs differ from it rerun)"
    )


def remove_killed_temporaries(repo: Path) -> str | None:
    """Remove the temporaries a killed stage left beside its outputs (SIGKILL runs no clean-up; a stage run
    removes its own outputs' leftovers, but a rerun that restores the outputs from DVC's cache runs no stage)
    unless a DVC process is running there; say what was removed, None if nothing."""
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))
    outputs = [path for stage in stage_dependencies(pipeline).values() for path in stage["outs"]]
    with no_rwlock_writer(repo) as idle:
        if not idle:
            return None
        removed = [name for output in outputs for name in remove_leftovers(repo / output)]
    return f"{repo}: removed what killed stages left: {', '.join(removed)}" if removed else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=PROJECT_ROOT)
    args = parser.parse_args(argv)
    try:
        healed = [heal_rwlock(args.repo), heal_dvc_lock(args.repo), remove_killed_temporaries(args.repo)]
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for what in filter(None, healed):
        print(f"repair_after_kill: {what}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
