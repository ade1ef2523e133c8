"""The `url` source: the four canonical `.gz` IDX files from the first mirror that serves them intact."""

from __future__ import annotations

import time
from collections.abc import Callable

from mnist_dvc.formats import idx
from mnist_dvc.sources import MnistSplits, labelled_splits
from mnist_dvc.sources.download import ExpectedFile, download_verified

# Yann LeCun's canonical files, as the mirrors serve them, with their published sizes and digests.
MNIST_URL_FILES = (
    ExpectedFile(
        "train-images-idx3-ubyte.gz", 9_912_422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
    ),
    ExpectedFile(
        "train-labels-idx1-ubyte.gz", 28_881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
    ),
    ExpectedFile(
        "t10k-images-idx3-ubyte.gz", 1_648_877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
    ),
    ExpectedFile(
        "t10k-labels-idx1-ubyte.gz", 4_542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
    ),
)


def load_url(
    mirrors: tuple[str, ...],
    timeout_seconds: float,
    retries: int,
    files: tuple[ExpectedFile, ...] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> MnistSplits:
    """Download the four `.gz` IDX files (`files`, in RAW_FILE_NAMES order; MNIST's by default) and decode them."""
    files = files or MNIST_URL_FILES
    arrays = []
    for expected, ndim in zip(files, (3, 1, 3, 1), strict=True):
        payload = download_verified(expected, mirrors, timeout_seconds, retries, sleep=sleep or time.sleep)
        arrays.append(idx.decode_idx(idx.gunzip(payload, expected.name), expected.name, ndim))
    train_images, train_labels, test_images, test_labels = arrays
    return labelled_splits(
        train_images, train_labels, test_images, test_labels, sources=tuple(expected.name for expected in files)
    )
