"""What every entry point of the project shares: the environment TensorFlow reads when it loads, logging set-up,
and turning bad input into a clean exit."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
from collections.abc import MutableMapping
from typing import Protocol

from mnist_dvc.errors import PipelineError


class MainFunction(Protocol):
    """A stage's `main`: command-line arguments (None: the process's) to an exit status."""

    def __call__(self, argv: list[str] | None = None) -> int: ...


# TensorFlow reads these once, when it is first imported: set where a process starts (`stages/__init__.py`
# for every stage, each command's `main`), never on import of a library module.
# oneDNN kernels: TensorFlow leaves them off on some x86 CPUs (AMD's among them), where they train the compact
# model about 1.6x faster, and the portable kernels (compute.portable_kernels) are oneDNN's. Log level 2 hides
# the C++ runtime's INFO lines (among them "oneDNN custom operations are on. You may see slightly different
# numerical results", which the pinned kernels make untrue here) and keeps its warnings and errors.
# A value the user sets wins.
TENSORFLOW_ENVIRONMENT = {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def prepare_tensorflow_environment(environment: MutableMapping[str, str] = os.environ) -> None:
    """Set TensorFlow's start-up variables in `environment` (the process's), unless already set. Call it before
    anything imports TensorFlow."""
    for name, value in TENSORFLOW_ENVIRONMENT.items():
        environment.setdefault(name, value)


def configure_logging() -> None:
    """One format for every stage: time, stage module, message."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )


def exits_cleanly_on_bad_input(main: MainFunction) -> MainFunction:
    """Report a `PipelineError` as one clear line on stderr and exit 1, instead of a traceback."""

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        # A stage stopped by SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C does, so that the
        # atomic writers remove their temporary files instead of leaving them behind.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            return main(argv)
        except PipelineError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

    return wrapper


def _exit_on_sigterm(signal_number: int, _frame: object) -> None:
    raise SystemExit(128 + signal_number)
