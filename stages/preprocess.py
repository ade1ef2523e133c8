"""Stage 2, preprocess: validate the raw IDX files and write model-ready arrays to `data/prepared/`.

Images become uint8 (n, 28, 28, 1): scaling to [0, 1] is the model's job, so the arrays stay small and
exact. A stratified validation set is split off the training images; the labelled test set is kept
untouched for evaluation, and the (unlabelled) images to predict are passed on as they are.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mnist_dvc.digit_arrays import LabelledImages, check_labelled_images, checked_images
from mnist_dvc.formats import idx
from mnist_dvc.formats.prepared_arrays import write_prepared
from mnist_dvc.params.loading import load_section
from mnist_dvc.params.preprocess import PreprocessParams
from mnist_dvc.process_setup import configure_logging, exits_cleanly_on_bad_input
from mnist_dvc.splits import stratified_split

logger = logging.getLogger("stages.preprocess")


def read_raw_split(raw_dir: Path, images_name: str, labels_name: str) -> LabelledImages:
    """Read and validate one images/labels IDX pair from `raw_dir`."""
    images = idx.read_idx(raw_dir / images_name, expected_ndim=3)
    labels = idx.read_idx(raw_dir / labels_name, expected_ndim=1)
    return check_labelled_images(images, labels, f"{raw_dir / images_name} + {labels_name}")


def prepare_splits(train: LabelledImages, test: LabelledImages, params: PreprocessParams) -> dict[str, LabelledImages]:
    """The three prepared splits: train and val (stratified from the training images) and test (as is)."""
    train_indices, validation_indices = stratified_split(
        train.labels, params.validation_size, params.random_seed, key="preprocess.validation_size"
    )
    return {
        "train": LabelledImages(train.images[train_indices], train.labels[train_indices]),
        "val": LabelledImages(train.images[validation_indices], train.labels[validation_indices]),
        "test": test,
    }


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
    logger.info(
        "read %d training, %d test and %d images to predict from %s",
        len(train.labels),
        len(test.labels),
        len(predict_images),
        args.raw_dir,
    )
    write_prepared(prepare_splits(train, test, params), predict_images, args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
