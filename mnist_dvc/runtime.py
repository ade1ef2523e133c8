"""What every stage's entry point shares: logging set-up and turning bad input into a clean exit."""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Callable

from mnist_dvc.errors import PipelineError

MainFunction = Callable[[list[str] | None], int]


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
