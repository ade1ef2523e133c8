"""Writes that never leave a half-written output: write to a temporary sibling, then rename into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mnist_dvc.errors import PipelineError


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed.

    The temporary file lives in the same folder so that `os.replace` is an atomic rename.
    Its name keeps the suffix of `path`, since some writers (Keras, matplotlib) choose the format by it.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as error:
        raise _write_error(path, error) from None
    os.close(handle)
    temporary_path = Path(temporary)
    # mkstemp creates 0600 files; outputs should get the usual permissions, as `open()` would give.
    os.chmod(temporary_path, 0o666 & ~_current_umask())
    try:
        yield temporary_path
        os.replace(temporary_path, path)
    except OSError as error:  # a full disk, a quota, a read-only file system: said, not a traceback
        raise _write_error(path, error) from None
    finally:
        temporary_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it replaces `path` whole.

    A stage that fails part-way leaves the previous folder (or none) in place, never a mix.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path)
        temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as error:
        raise _write_error(path, error) from None
    os.chmod(temporary, 0o777 & ~_current_umask())
    try:
        yield temporary
        if path.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, retired / path.name)
            os.replace(temporary, path)
            shutil.rmtree(retired)
        else:
            os.replace(temporary, path)
    except OSError as error:
        raise _write_error(path, error) from None
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)


def remove_leftovers(path: Path) -> None:
    """Remove the temporaries an earlier writer of `path` left behind when it was killed (SIGKILL cannot be
    caught, so its `finally` never ran). Only this path's own patterns, in its own folder: DVC runs one
    stage, so one writer of a path, at a time."""
    for pattern in (f".{path.stem}.*.tmp{path.suffix}", f".{path.name}.*.tmp", f".{path.name}.*.old"):
        for leftover in path.parent.glob(pattern):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> None:
    """Write `text` (UTF-8, newline-terminated lines as given) to `path` atomically."""
    with atomic_file(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_bytes_atomically(path: Path, content: bytes) -> None:
    """Write `content` to `path` atomically."""
    with atomic_file(path) as temporary:
        temporary.write_bytes(content)


def _write_error(path: Path, error: OSError) -> PipelineError:
    """The error for a failed write, with the room left on the file system (numpy's short writes say only
    how many bytes they wrote, not why)."""
    reason = f"{error.strerror} (errno {error.errno})" if error.errno else str(error)
    folder = next((parent for parent in path.parents if parent.is_dir()), Path("."))
    try:
        room = f", {shutil.disk_usage(folder).free} bytes free there"
    except OSError:
        room = ""
    return PipelineError(f"{path}: expected to write it. Received: {reason}{room}; nothing of it was left half-written")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
