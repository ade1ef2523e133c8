"""The data's constants and what every stage asks of digit arrays: uint8 images (n >= 1, 28, 28) and,
with them, one label 0-9 each.

The image side and the number of classes live here and nowhere else. fetch checks what a source gave it
before writing `data/raw/`; preprocess checks what it reads back; both with these functions, so a bad
array reads the same wherever it is caught.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mnist_dvc.errors import PipelineError

IMAGE_SIDE = 28
NUM_CLASSES = 10


def check_images(images: np.ndarray, source: str) -> None:
    """Refuse anything but uint8 images of shape (n, 28, 28) with n >= 1; `source` names the file."""
    if images.dtype != np.uint8:
        raise PipelineError(f"{source}: expected uint8 images. Received: {images.dtype}")
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise PipelineError(
            f"{source}: expected images of {IMAGE_SIDE}x{IMAGE_SIDE} pixels, shape "
            f"(n, {IMAGE_SIDE}, {IMAGE_SIDE}). Received: {images.shape}"
        )
    if len(images) == 0:
        raise PipelineError(f"{source}: expected at least one image. Received: 0")


def check_labelled(images: np.ndarray, labels: np.ndarray, source: str) -> None:
    """`check_images`, and one uint8 label 0-9 per image."""
    check_images(images, source)
    if labels.dtype != np.uint8:
        raise PipelineError(f"{source}: expected uint8 labels. Received: {labels.dtype}")
    if labels.shape != (len(images),):
        raise PipelineError(
            f"{source}: expected one label per image ({len(images)} images). Received: labels of shape {labels.shape}"
        )
    if labels.max() >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise PipelineError(f"{source}: expected labels 0-9. Received: {labels[bad]} at index {bad}")


@dataclasses.dataclass(frozen=True)
class LabelledImages:
    """images: uint8 (n, 28, 28, 1); labels: uint8 (n,) with values 0-9."""

    images: np.ndarray
    labels: np.ndarray


def check_labelled_images(images: np.ndarray, labels: np.ndarray, source: str) -> LabelledImages:
    """Validate one split read from IDX (images (n, 28, 28), labels (n,)) and add the channel axis."""
    check_labelled(images, labels, source)
    return LabelledImages(images[..., np.newaxis], labels)


def checked_images(images: np.ndarray, source: str) -> np.ndarray:
    """Validate unlabelled images read from IDX (uint8 (n, 28, 28), n >= 1) and add the channel axis."""
    check_images(images, source)
    return images[..., np.newaxis]
