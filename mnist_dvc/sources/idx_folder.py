"""The `idx` source: the four IDX files, plain or gzipped, in one folder."""

from __future__ import annotations

from pathlib import Path

from mnist_dvc.errors import PipelineError
from mnist_dvc.formats import idx
from mnist_dvc.sources import MnistSplits, labelled_splits


def find_idx_files(folder: Path) -> tuple[Path, ...]:
    """The four IDX files in `folder`, each either plain or `.gz`, in RAW_FILE_NAMES order."""
    if not folder.is_dir():
        raise PipelineError(
            f"{folder} (fetch.local_path): expected a folder holding the four IDX files. "
            f"Received: {'a file' if folder.exists() else 'no such folder'}"
        )
    found = []
    for name in idx.RAW_FILE_NAMES[:4]:
        candidates = [path for path in (folder / name, folder / f"{name}.gz") if path.is_file()]
        if not candidates:
            present = sorted(path.name for path in folder.iterdir())
            raise PipelineError(
                f"{folder}: expected {name} or {name}.gz. Received: "
                f"{', '.join(present) if present else 'an empty folder'}"
            )
        if len(candidates) > 1:
            raise PipelineError(f"{folder}: expected one of {name} and {name}.gz. Received: both (remove one)")
        found.append(candidates[0])
    return tuple(found)


def load_idx_folder(folder: Path) -> MnistSplits:
    """Read the four IDX files (plain or gzip) from `folder`."""
    paths = find_idx_files(folder)
    train_images, train_labels, test_images, test_labels = (
        idx.read_idx(path, ndim) for path, ndim in zip(paths, (3, 1, 3, 1), strict=True)
    )
    return labelled_splits(
        train_images, train_labels, test_images, test_labels, sources=tuple(str(path) for path in paths)
    )
