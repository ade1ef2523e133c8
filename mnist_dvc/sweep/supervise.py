"""Run a command so that it dies with the process that started it: `python -m mnist_dvc.sweep.supervise CMD...`.

A sweep's worker runs `git`, `dvc exp run` and `dvc push` as children. When the worker dies (killed, its
machine lost), those must not live on: an orphaned `dvc exp run` could push an experiment after the task
was retried elsewhere. The kernel sends this supervisor SIGTERM when the thread that started it exits
(PR_SET_PDEATHSIG, set by `start_supervised`); the supervisor runs the command in a process group of its
own and, on SIGTERM or SIGINT, or when its parent changes, kills that whole group (DVC and each stage it
started) before exiting. Its exit status is the command's.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child, before exec: the kernel sends SIGTERM when the parent thread exits (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def start_supervised(
    command: list[str], cwd: Path, environment: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """Start `command` under the supervisor, its output (both streams) appended to `log`."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "mnist_dvc.sweep.supervise", *command],
            cwd=cwd,
            env=dict(environment),
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # noqa: PLW1509 (Linux only, and needed before exec)
        )


def main(argv: list[str]) -> int:
    parent = os.getppid()
    child = subprocess.Popen(argv, start_new_session=True)

    def stop(signal_number: int, _frame: FrameType | None) -> None:
        _kill_group(child.pid)
        os._exit(128 + signal_number)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        try:
            return child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            if os.getppid() != parent:  # the parent died before PR_SET_PDEATHSIG could be set
                stop(signal.SIGTERM, None)


def _kill_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        return
    time.sleep(0.05)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
