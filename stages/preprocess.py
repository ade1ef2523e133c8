"""Stage 2, preprocess: validate the raw IDX files and write model-ready arrays to `data/prepared/`.

Images become uint8 (n, 28, 28, 1): scaling to [0, 1] is the model's job, so the arrays stay small and
exact. A stratified validation set is split off the training images; the labelled test set is kept
untouched for evaluation, and the (unlabelled) images to predict are passed on as they are.
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
from stages.digit_arrays import IMAGE_SIDE, NUM_CLASSES, check_images, check_labelled
from stages.errors import PipelineError
from stages.params import check, load_section
from stages.runtime import configure_logging, exits_cleanly_on_bad_input
from stages.splits import stratified_split

logger = logging.getLogger("stages.preprocess")

PREPARED_SPLITS = ("train", "val", "test")
PREDICT_SPLIT = "predict"


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
    check_labelled(images, labels, source)
    return LabelledImages(images[..., np.newaxis], labels)


def checked_images(images: np.ndarray, source: str) -> np.ndarray:
    """Validate unlabelled images read from IDX (uint8 (n, 28, 28), n >= 1) and add the channel axis."""
    check_images(images, source)
    return images[..., np.newaxis]


def read_raw_split(raw_dir: Path, images_name: str, labels_name: str) -> LabelledImages:
    """Read and validate one images/labels IDX pair from `raw_dir`."""
    images = idx.read_idx(raw_dir / images_name, expected_ndim=3)
    labels = idx.read_idx(raw_dir / labels_name, expected_ndim=1)
    return check_labelled_images(images, labels, f"{raw_dir / images_name} + {labels_name}")


def prepare_splits(train: LabelledImages, test: LabelledImages, params: PreprocessParams) -> dict[str, LabelledImages]:
    """The three prepared splits: train and val (stratified from the training images) and test (as is)."""
    train_indices, validation_indices = stratified_split(
        train.labels, params.validation_size, params.random_seed, key="preprocess.validation_size")
    return {
        "train": LabelledImages(train.images[train_indices], train.labels[train_indices]),
        "val": LabelledImages(train.images[validation_indices], train.labels[validation_indices]),
        "test": test,
    }


def write_prepared(splits: dict[str, LabelledImages], predict_images: np.ndarray, out_dir: Path) -> None:
    """Write `<split>_images.npy` and `<split>_labels.npy` for each split, and `predict_images.npy`,
    replacing `out_dir` whole."""
    with atomic_directory(out_dir) as staging:
        for name, split in splits.items():
            np.save(staging / f"{name}_images.npy", split.images, allow_pickle=False)
            np.save(staging / f"{name}_labels.npy", split.labels, allow_pickle=False)
        np.save(staging / f"{PREDICT_SPLIT}_images.npy", predict_images, allow_pickle=False)
    for name, split in splits.items():
        counts = np.bincount(split.labels, minlength=NUM_CLASSES).tolist()
        logger.info("wrote %s/%s_{images,labels}.npy: %s, per class %s", out_dir, name, split.images.shape, counts)
    logger.info("wrote %s/%s_images.npy: %s", out_dir, PREDICT_SPLIT, predict_images.shape)


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


def read_prepared_images(prepared_dir: Path, split: str = PREDICT_SPLIT) -> np.ndarray:
    """Read the unlabelled images of `split` (uint8 (n, 28, 28, 1)), checking their shape."""
    images_path = prepared_dir / f"{split}_images.npy"
    images = _load_array(images_path)
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE, 1):
        raise PipelineError(f"{images_path}: expected shape (n, 28, 28, 1). Received: {images.shape}")
    return checked_images(images[..., 0], str(images_path))


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
    parser.add_argument("--raw-dir", type=Path, required=True, help="folder with the five raw IDX files")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for the prepared .npy arrays")
    args = parser.parse_args(argv)
    configure_logging()
    params = load_section(args.params, PreprocessParams.SECTION, PreprocessParams)
    train = read_raw_split(args.raw_dir, idx.TRAIN_IMAGES, idx.TRAIN_LABELS)
    test = read_raw_split(args.raw_dir, idx.TEST_IMAGES, idx.TEST_LABELS)
    predict_path = args.raw_dir / idx.PREDICT_IMAGES
    predict_images = checked_images(idx.read_idx(predict_path, expected_ndim=3), str(predict_path))
    logger.info("read %d training, %d test and %d images to predict from %s",
                len(train.labels), len(test.labels), len(predict_images), args.raw_dir)
    write_prepared(prepare_splits(train, test, params), predict_images, args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
