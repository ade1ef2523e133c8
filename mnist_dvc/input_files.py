"""Reading an input file at the edge, so that every operating-system condition becomes a clear error.

A path given as an input can be a directory, a named pipe (reading it would wait forever), a device, a
file without read permission, or missing; each is reported as what it is, never as a traceback and
never as "no such file" when something else is there.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mnist_dvc.errors import PipelineError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def what_is_at(path: Path) -> str:
    """'a file' for a regular file (or a link to one), else what is there instead, in words."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as error:
        return f"a path that cannot be examined ({error.strerror or error})"
    for is_kind, words in _KINDS:
        if is_kind(mode):
            return words
    return "a file"


def read_input_bytes(path: Path, expected: str, error: type[PipelineError] = PipelineError) -> bytes:
    """The bytes of the regular file `path`; otherwise `error` saying `expected` and what is there instead."""
    found = what_is_at(path)
    if found != "a file":
        raise error(f"{path}: expected {expected}. Received: {found}")
    try:
        return path.read_bytes()
    except OSError as failure:
        reason = failure.strerror or str(failure)
        if not os.access(path, os.R_OK):
            reason = "no permission to read it"
        raise error(f"{path}: expected {expected}. Received: a file that cannot be read ({reason})") from None
