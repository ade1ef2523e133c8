"""The small-profile repository after one full `dvc repro`, built once per test session.

`ensure_built(folder)` builds it in `folder` under a file lock, or returns at once when another process
already has: the first pytest-xdist worker to need it (or the background build the test session starts,
see tests/conftest.py) builds it, and every later caller copies the finished one.
Run as `python -m tests.small_pipeline FOLDER` for that background build.
"""

from __future__ import annotations

import fcntl
import shutil
import sys
from pathlib import Path

from tools.workspace import ALL_STAGES, SMALL_PROFILE, commit, dvc, make_workspace, stages_run

COMPLETE = "complete"


def ensure_built(folder: Path) -> Path:
    """The repository `folder`/repo, up to date and committed; built now unless a previous call finished it."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / COMPLETE).exists():
            shutil.rmtree(folder / "repo", ignore_errors=True)
            shutil.rmtree(folder / "repo-remote", ignore_errors=True)
            root = make_workspace(folder / "repo", SMALL_PROFILE)
            output = dvc(root, "repro")
            assert stages_run(output) == list(ALL_STAGES), output
            commit(root, "dvc repro")
            (folder / COMPLETE).touch()
    return folder / "repo"


if __name__ == "__main__":
    ensure_built(Path(sys.argv[1]))
