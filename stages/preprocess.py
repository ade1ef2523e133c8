"""Stage 2, preprocess: validate the raw IDX files and write model-ready arrays to `data/prepared/`.

Images become uint8 (n, 28, 28, 1): scaling to [0, 1] is the model's job, so the arrays stay small and
exact. A stratified validation set is split off the training images; the official test set is kept
untouched for evaluation.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import ClassVar

import numpy as np

from stages import idx
from stages.atomic_files import atomic_directory
from stages.errors import PipelineError
from stages.params import check, load_section
from stages.runtime import configure_logging, exits_cleanly_on_bad_input

logger = logging.getLogger("stages.preprocess")

IMAGE_SIDE = 28
NUM_CLASSES = 10
PREPARED_SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class PreprocessParams:
    """The `preprocess` section of params.yaml."""

    SECTION: ClassVar[str] = "preprocess"
    validation_size: float
    random_seed: int

    def __post_init__(self) -> None:
        check(0.0 < self.validation_size < 1.0, "preprocess.validation_size",
              "a fraction strictly between 0 and 1", self.validation_size)
        check(self.random_seed >= 0, "preprocess.random_seed", "a non-negative integer", self.random_seed)


@dataclasses.dataclass(frozen=True)
class LabelledImages:
    """images: uint8 (n, 28, 28, 1); labels: uint8 (n,) with values 0-9."""

    images: np.ndarray
    labels: np.ndarray


def check_labelled_images(images: np.ndarray, labels: np.ndarray, source: str) -> LabelledImages:
    """Validate one split read from IDX (images (n, 28, 28), labels (n,)) and add the channel axis."""
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise PipelineError(f"{source}: expected uint8 images and labels. Received: {images.dtype}, {labels.dtype}")
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise PipelineError(f"{source}: expected images of shape (n, 28, 28). Received: {images.shape}")
    if len(images) == 0:
        raise PipelineError(f"{source}: expected at least one image. Received: 0")
    if labels.shape != (len(images),):
        raise PipelineError(
            f"{source}: expected one label per image ({len(images)}). Received: labels of shape {labels.shape}"
        )
    if labels.max() >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise PipelineError(f"{source}: expected labels 0-9. Received: {labels[bad]} at index {bad}")
    return LabelledImages(images[..., np.newaxis], labels)


def read_raw_split(raw_dir: Path, images_name: str, labels_name: str) -> LabelledImages:
    """Read and validate one images/labels IDX pair from `raw_dir`."""
    images = idx.read_idx(raw_dir / images_name, expected_ndim=3)
    labels = idx.read_idx(raw_dir / labels_name, expected_ndim=1)
    return check_labelled_images(images, labels, f"{raw_dir / images_name} + {labels_name}")


def stratified_split(labels: np.ndarray, validation_size: float, random_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation), each sorted, with every class split in the same proportion.

    Each class contributes round(validation_size * class count) images to validation, but never all of
    its images nor, when it has two or more, none.
    """
    rng = np.random.default_rng(random_seed)
    train_parts, validation_parts = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = int(round(validation_size * len(members)))
        count = min(max(count, 1 if len(members) >= 2 else 0), len(members) - 1)
        validation_parts.append(members[:count])
        train_parts.append(members[count:])
    train_indices = np.sort(np.concatenate(train_parts))
    validation_indices = np.sort(np.concatenate(validation_parts))
    if len(validation_indices) == 0:
        raise PipelineError(
            f"preprocess.validation_size={validation_size}: expected at least one validation image. "
            f"Received: {len(labels)} training images, too few to split"
        )
    return train_indices, validation_indices


def prepare_splits(train: LabelledImages, test: LabelledImages, params: PreprocessParams) -> dict[str, LabelledImages]:
    """The three prepared splits: train and val (stratified from the training images) and test (as is)."""
    train_indices, validation_indices = stratified_split(train.labels, params.validation_size, params.random_seed)
    return {
        "train": LabelledImages(train.images[train_indices], train.labels[train_indices]),
        "val": LabelledImages(train.images[validation_indices], train.labels[validation_indices]),
        "test": test,
    }


def write_prepared(splits: dict[str, LabelledImages], out_dir: Path) -> None:
    """Write `<split>_images.npy` and `<split>_labels.npy` for each split, replacing `out_dir` whole."""
    with atomic_directory(out_dir) as staging:
        for name, split in splits.items():
            np.save(staging / f"{name}_images.npy", split.images, allow_pickle=False)
            np.save(staging / f"{name}_labels.npy", split.labels, allow_pickle=False)
    for name, split in splits.items():
        counts = np.bincount(split.labels, minlength=NUM_CLASSES).tolist()
        logger.info("wrote %s/%s_{images,labels}.npy: %s, per class %s", out_dir, name, split.images.shape, counts)


def read_prepared(prepared_dir: Path, split: str) -> LabelledImages:
    """Read one prepared split back, checking it is what this stage writes."""
    images_path = prepared_dir / f"{split}_images.npy"
    labels_path = prepared_dir / f"{split}_labels.npy"
    images = _load_array(images_path)
    labels = _load_array(labels_path)
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE, 1):
        raise PipelineError(f"{images_path}: expected shape (n, 28, 28, 1). Received: {images.shape}")
    checked = check_labelled_images(images[..., 0], labels, f"{images_path} + {labels_path.name}")
    return checked


def _load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise PipelineError(f"{path}: expected a prepared array (run the preprocess stage). Received: no such file") from None
    except (ValueError, OSError, EOFError) as error:
        raise PipelineError(f"{path}: expected a .npy array. Received: unreadable file ({error})") from None


@exits_cleanly_on_bad_input
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--raw-dir", type=Path, required=True, help="folder with the four IDX files")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for the prepared .npy arrays")
    args = parser.parse_args(argv)
    configure_logging()
    params = load_section(args.params, PreprocessParams.SECTION, PreprocessParams)
    train = read_raw_split(args.raw_dir, idx.TRAIN_IMAGES, idx.TRAIN_LABELS)
    test = read_raw_split(args.raw_dir, idx.TEST_IMAGES, idx.TEST_LABELS)
    logger.info("read %d training and %d test images from %s", len(train.labels), len(test.labels), args.raw_dir)
    write_prepared(prepare_splits(train, test, params), args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
