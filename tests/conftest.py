"""Shared fixtures: tiny seeded synthetic data, so unit tests never need the real MNIST."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def synthetic_digits(per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (10 * per_class, 28, 28) with a class-dependent bright bar, and uint8 labels 0-9."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
    images = rng.integers(0, 40, size=(len(labels), 28, 28), dtype=np.uint8)
    for index, label in enumerate(labels):
        images[index, 2 + 2 * label : 4 + 2 * label, 4:24] = 255
    return images, labels


@pytest.fixture
def digits() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_digits(per_class=6)
