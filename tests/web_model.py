"""A model that reads real digits well enough to test the page and the API with, in seconds.

The small pipeline profile trains on 600 images for one epoch (about 20% accurate: it tests the plumbing,
not the reading). The web tests need a model that reads MNIST's test digits as the real one does, so this
trains the project's compact CNN on the first 12,000 of the bundled training images for two epochs (about
98% on the test digits), in a process of its own with pinned compute, and exports it as the export stage
does (a float LiteRT file). Built once per test session, under a file lock, like tests/small_pipeline.py.

    python -m tests.web_model FOLDER   # writes FOLDER/model.tflite
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

import numpy as np

TRAINING_IMAGES = 12_000
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def mnist_test_digits(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` official test digits, uint8 (count, 28, 28), and their labels, from the bundled source."""
    from mnist_dvc.sources.bundled import load_bundled, locate_bundled_file

    splits = load_bundled(locate_bundled_file())
    return splits.test_images[:count], splits.test_labels[:count]


def train_web_model(out: Path) -> None:
    from mnist_dvc.params.compute import ComputeParams
    from mnist_dvc.reproducible_compute import configure_compute

    configure_compute(ComputeParams(portable_kernels=True, threads=2))
    import keras

    from mnist_dvc.model.architectures import Augmentation, build_compact_model
    from mnist_dvc.model.export import to_litert
    from mnist_dvc.sources.bundled import load_bundled, locate_bundled_file

    splits = load_bundled(locate_bundled_file())
    images, labels = splits.train_images[:TRAINING_IMAGES], splits.train_labels[:TRAINING_IMAGES]
    keras.utils.set_random_seed(0)
    model = build_compact_model(Augmentation(5.0, 0.05, 1.0), random_seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy")
    model.fit(images[..., np.newaxis], labels, epochs=3, batch_size=64, verbose=0)
    out.write_bytes(to_litert(model))


def ensure_trained(folder: Path) -> Path:
    """`folder`/model.tflite, trained now (in a subprocess) unless an earlier call finished it."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "model.tflite"
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not model.exists():
            subprocess.run(
                [sys.executable, "-m", "tests.web_model", str(folder)],
                cwd=PROJECT_ROOT,
                check=True,
                capture_output=True,
            )
    return model


if __name__ == "__main__":
    target = Path(sys.argv[1])
    train_web_model(target / "model.tflite.partial")
    (target / "model.tflite.partial").rename(target / "model.tflite")
