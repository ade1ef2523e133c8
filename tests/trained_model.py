"""A compact CNN trained on synthetic digits in a process of its own, for the export tests.

In its own process, with its own compute settings (portable kernels, one thread, deterministic ops), the
model's bytes depend on nothing an earlier test did to TensorFlow in a pytest worker: the same file every
run, in any test order, so that the export tests' bounds are measured on a known model.

    python -m tests.trained_model OUT.keras
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tests.conftest import synthetic_digits


def train_synthetic_model(out: Path) -> None:
    """Train for 200 steps on synthetic digits (so that its activations have real ranges and many of its
    decisions are clear) and save the model as the pipeline does."""
    from mnist_dvc.params.compute import ComputeParams
    from mnist_dvc.reproducible_compute import configure_compute

    configure_compute(ComputeParams(portable_kernels=True, threads=1))
    import keras

    from mnist_dvc.model.architectures import Augmentation, build_compact_model
    from mnist_dvc.model.files import save_model

    images, labels = synthetic_digits(per_class=40, seed=1)
    keras.utils.set_random_seed(0)  # fit's shuffling
    model = build_compact_model(Augmentation(0.0, 0.0, 0.0), random_seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy")
    model.fit(images[..., np.newaxis], labels, epochs=4, batch_size=8, verbose=0)  # 200 steps: BatchNorm settles
    save_model(model, out)


if __name__ == "__main__":
    train_synthetic_model(Path(sys.argv[1]))
