"""What every entry point of the project shares: the environment TensorFlow reads when it loads, logging set-up,
and turning bad input into a clean exit."""

from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import signal
import sys
import threading
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


def start_stage_process() -> None:
    """What a stage process sets up before anything imports TensorFlow: its environment, and stderr without the
    known native noise."""
    prepare_tensorflow_environment()
    filter_native_stderr()


def prepare_tensorflow_environment(environment: MutableMapping[str, str] = os.environ) -> None:
    """Set TensorFlow's start-up variables in `environment` (the process's), unless already set. Call it before
    anything imports TensorFlow."""
    for name, value in TENSORFLOW_ENVIRONMENT.items():
        environment.setdefault(name, value)


# Lines that TensorFlow's and LiteRT's C++ code prints straight to the process's stderr, which no Python logging
# setting reaches (absl prints everything written before its initialisation, whatever TF_CPP_MIN_LOG_LEVEL says),
# and which say nothing to act on. Each pattern matches one whole line; anything else passes through.
NATIVE_NOISE = (
    re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    # Said at TensorFlow's import; with compute.portable_kernels the results are the same bytes everywhere.
    re.compile(r"I\d{4} [\d:. ]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\..*"),
    # LiteRT's interpreter announcing its default CPU delegate, once per interpreter.
    re.compile(r"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."),
    # The int8 converter's settings, printed by its C++ code on every conversion.
    re.compile(r"fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+"),
    # A graph-version notice Keras's data adapters trigger; harmless, and phrased as an error.
    re.compile(r"E\d{4} [\d:. ]+ +\d+ .*NodeDef mentions attribute .* which is not in the op definition.*"),
)


def is_native_noise(line: str) -> bool:
    """Whether a line of stderr is one of the known NATIVE_NOISE lines."""
    return any(pattern.fullmatch(line) for pattern in NATIVE_NOISE)


def filter_native_stderr() -> None:
    """From now until the process exits, drop NATIVE_NOISE lines from everything written to stderr (file
    descriptor 2, so C++ code's writes too); every other line passes through unchanged, in order.

    Stderr becomes a pipe read by a thread that forwards each line to the original stderr; at exit the pipe
    is drained. Only for a process's own entry point: never in a library import or a test process.
    """
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward_lines, args=(read_end, original), daemon=True)
    forwarder.start()

    def drain() -> None:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes this process's write end of the pipe: the forwarder reads to its end
        forwarder.join(timeout=5.0)

    atexit.register(drain)


def _forward_lines(read_end: int, original: int) -> None:
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = [line for line in lines if not is_native_noise(line.decode("utf-8", "replace"))]
            if kept:
                _write_all(original, b"".join(line + b"\n" for line in kept))
        if pending and not is_native_noise(pending.decode("utf-8", "replace")):
            _write_all(original, pending)


def _write_all(descriptor: int, data: bytes) -> None:
    while data:
        data = data[os.write(descriptor, data) :]


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
