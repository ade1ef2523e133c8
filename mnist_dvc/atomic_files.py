"""Writes that never leave a half-written output: write to a temporary sibling, then rename into place."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from mnist_dvc.errors import PipelineError

# A test-only hook (tests/test_faults.py): when this names a folder, a stage about to move its outputs into
# place writes `held-<pid>` there and waits to be killed, so that a test can kill every stage at that known
# point instead of racing it with a timer. Unset, it costs one dictionary look-up per stage.
HOLD_BEFORE_MOVE_VARIABLE = "MNIST_DVC_HOLD_BEFORE_OUTPUTS_MOVE"
HOLD_SECONDS = 600.0


@dataclasses.dataclass
class _OutputSet:
    """Outputs written to temporaries, to be moved into place together: (temporary, final path) in order."""

    pending: list[tuple[Path, Path]] = dataclasses.field(default_factory=list)


_open_set: contextvars.ContextVar[_OutputSet | None] = contextvars.ContextVar("_open_set", default=None)
# How many `atomic_directory` stagings are open: a file written inside one is part of that folder's output, so it
# moves into the staging folder at once, and the folder as a whole is what joins a set (or holds for a test).
_open_stagings: contextvars.ContextVar[int] = contextvars.ContextVar("_open_stagings", default=0)


@contextlib.contextmanager
def outputs_move_together() -> Iterator[None]:
    """Within the block, every `atomic_file` and `atomic_directory` keeps its finished temporary; at the block's
    end they all move into place, or, when the block raises, none does and every temporary is removed.

    A stage wraps all its writes in one such block, so that a failure on its last output leaves the
    previous run's outputs all in place, never some new files beside old ones. The moves are renames in
    the outputs' own folders (microseconds); one that fails puts back what the earlier ones replaced.
    """
    if _open_set.get() is not None:  # nested: the outer block moves everything
        yield
        return
    output_set = _OutputSet()
    token = _open_set.set(output_set)
    try:
        try:
            yield
        finally:
            _open_set.reset(token)
        _move_into_place(output_set.pending)
    finally:
        for temporary, _path in output_set.pending:
            _remove(temporary)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` (at the end of the enclosing
    `outputs_move_together` block, if any), on error it is removed.

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
    with _finished_when_done(temporary_path, path):
        yield temporary_path


@contextlib.contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it replaces `path` whole (at the end of the
    enclosing `outputs_move_together` block, if any).

    A stage that fails part-way leaves the previous folder (or none) in place, never a mix.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path)
        temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as error:
        raise _write_error(path, error) from None
    os.chmod(temporary, 0o777 & ~_current_umask())
    with _finished_when_done(temporary, path):
        token = _open_stagings.set(_open_stagings.get() + 1)
        try:
            yield temporary
        finally:
            _open_stagings.reset(token)


@contextlib.contextmanager
def _finished_when_done(temporary: Path, path: Path) -> Iterator[None]:
    """Hand a written temporary to the open output set, or move it into place now when there is none;
    remove it when the writer raised."""
    inside_staging = _open_stagings.get() > 0
    output_set = None if inside_staging else _open_set.get()
    try:
        yield
    except OSError as error:  # a full disk, a quota, a read-only file system while writing: said, not a traceback
        _remove(temporary)
        raise _write_error(path, error) from None
    except BaseException:
        _remove(temporary)
        raise
    if output_set is not None:
        output_set.pending.append((temporary, path))
        return
    try:
        _move_into_place([(temporary, path)], hold_for_a_test=not inside_staging)
    finally:
        _remove(temporary)


def _move_into_place(pending: list[tuple[Path, Path]], hold_for_a_test: bool = True) -> None:
    """Rename each temporary onto its path, keeping what each replaced until all are in place; on a failed
    rename, put every replaced output back and raise naming the path."""
    if not pending:
        return
    if hold_for_a_test:
        _hold_if_a_test_asks(pending)
    replaced: list[tuple[Path, Path | None]] = []  # (path, where its previous version waits, or None)
    path = pending[0][1]
    try:
        for temporary, path in pending:
            retired = None
            if path.exists() or path.is_symlink():
                retired_folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
                retired = retired_folder / path.name
                os.replace(path, retired)
            replaced.append((path, retired))
            os.replace(temporary, path)
    except OSError as error:
        failed = path
        for moved, retired in reversed(replaced):
            _remove(moved)
            if retired is not None:
                os.replace(retired, moved)
        raise _write_error(failed, error) from None
    finally:
        for _path, retired in replaced:
            if retired is not None and retired.parent.exists():
                shutil.rmtree(retired.parent, ignore_errors=True)


def _hold_if_a_test_asks(pending: list[tuple[Path, Path]]) -> None:
    folder = os.environ.get(HOLD_BEFORE_MOVE_VARIABLE)
    if not folder:
        return
    # One line per output: its final path, a tab, the temporary that would be moved there.
    held = "".join(f"{path}\t{temporary}\n" for temporary, path in pending)
    (Path(folder) / f"held-{os.getpid()}").write_text(held)
    time.sleep(HOLD_SECONDS)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_leftovers(path: Path) -> list[str]:
    """Remove the temporaries an earlier writer of `path` left behind when it was killed (SIGKILL cannot be
    caught, so its `finally` never ran); return their names. Only this path's own patterns, in its own folder:
    DVC runs one stage, so one writer of a path, at a time."""
    removed = []
    for pattern in (f".{path.stem}.*.tmp{path.suffix}", f".{path.name}.*.tmp", f".{path.name}.*.old"):
        for leftover in path.parent.glob(pattern):
            _remove(leftover)
            removed.append(leftover.name)
    return removed


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
