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
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from tools.workspace import PROJECT_ROOT


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


def heal_dvc_lock(repo: Path) -> str | None:
    """Put back `repo`'s committed `dvc.lock` when the file there is not YAML (cut by a kill mid-write); say what
    was done, None if nothing. Raises `RuntimeError` naming the file and the fix when git cannot restore it."""
    lock = repo / "dvc.lock"
    if not lock.is_file():
        return None
    try:
        document = yaml.safe_load(lock.read_text(encoding="utf-8"))
        if document is None or isinstance(document, dict):
            return None
    except (yaml.YAMLError, UnicodeDecodeError):
        pass
    size = lock.stat().st_size
    restored = subprocess.run(
        ["git", "checkout", "--", "dvc.lock"], cwd=repo, capture_output=True, text=True, check=False
    )
    if restored.returncode != 0:
        raise RuntimeError(
            f"{lock}: expected DVC's lock file. Received: {size} bytes that are not a YAML mapping "
            "(a dvc process killed while writing it?), and git could not restore it "
            f"({restored.stderr.strip()}); delete it and run `make repro`, which reruns every stage"
        )
    return (
        f"{lock}: was cut ({size} bytes, not YAML: a dvc process killed while writing it); restored the "
        "committed one from git (stages whose outputs differ from it rerun)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=PROJECT_ROOT)
    args = parser.parse_args(argv)
    try:
        healed = [heal_rwlock(args.repo), heal_dvc_lock(args.repo)]
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for what in filter(None, healed):
        print(f"repair_after_kill: {what}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
