"""The `kaggle` source: Kaggle's digit-recognizer `train.csv` and `test.csv` (the tutorial's input).

From a folder or the competition's zip, else downloaded with the `kaggle` command-line client. Kaggle's
test set has no labels, so a stratified hold-out of the training rows becomes the labelled test set and
`test.csv` becomes the images to predict.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import zipfile
from pathlib import Path

from mnist_dvc.archives import ARCHIVE_ERRORS, read_member
from mnist_dvc.errors import PipelineError
from mnist_dvc.formats.kaggle_csv import parse_kaggle_csv
from mnist_dvc.input_files import read_input_bytes
from mnist_dvc.sources import MnistSplits
from mnist_dvc.splits import stratified_split

logger = logging.getLogger(__name__)

KAGGLE_COMPETITION = "digit-recognizer"
KAGGLE_FILES = ("train.csv", "test.csv")
KAGGLE_DOWNLOAD_TIMEOUT_SECONDS = 900


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
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=KAGGLE_DOWNLOAD_TIMEOUT_SECONDS, check=False
        )
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
        return tuple(
            (read_input_bytes(location / name, "a Kaggle CSV file"), str(location / name))  # type: ignore[return-value]
            for name in KAGGLE_FILES
        )
    try:
        with zipfile.ZipFile(location) as archive:
            names = [name for name in archive.namelist() if not name.endswith("/")]
            members = {Path(name).name: name for name in names}
            missing = [name for name in KAGGLE_FILES if name not in members]
            if missing:
                raise PipelineError(
                    f"{location}: expected a zip holding {' and '.join(KAGGLE_FILES)}. "
                    f"Received: {', '.join(sorted(members)) or 'an empty zip'}"
                )
            for wanted in KAGGLE_FILES:
                copies = sorted(name for name in names if Path(name).name == wanted)
                if len(copies) > 1:  # which one is meant cannot be guessed
                    raise PipelineError(
                        f"{location}: expected one {wanted}. Received: {len(copies)} ({', '.join(copies)})"
                    )
            return tuple(
                (read_member(archive, members[name], str(location)), f"{location}:{members[name]}")  # type: ignore[return-value]
                for name in KAGGLE_FILES
            )
    except ARCHIVE_ERRORS as error:
        raise PipelineError(f"{location}: expected a valid zip file. Received: {error}") from None


def load_kaggle(local_path: Path, holdout_size: float, holdout_seed: int) -> MnistSplits:
    """Kaggle's CSVs: a stratified hold-out of train.csv is the labelled test set, test.csv the images to predict."""
    location = locate_kaggle_input(local_path)
    logger.info("source=kaggle: reading %s", location)
    (train_bytes, train_name), (test_bytes, test_name) = read_kaggle_files(location)
    labelled = parse_kaggle_csv(train_bytes, train_name, labelled=True)
    unlabelled = parse_kaggle_csv(test_bytes, test_name, labelled=False)
    assert labelled.labels is not None  # parse_kaggle_csv(labelled=True) always returns labels
    kept, held_out = stratified_split(labelled.labels, holdout_size, holdout_seed, key="fetch.kaggle_holdout_size")
    return MnistSplits(
        train_images=labelled.images[kept],
        train_labels=labelled.labels[kept],
        test_images=labelled.images[held_out],
        test_labels=labelled.labels[held_out],
        predict_images=unlabelled.images,
    )
