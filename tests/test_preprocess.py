"""preprocess: validation of the raw split, the stratified validation split, the prepared arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnist_dvc.digit_arrays import LabelledImages, check_labelled_images
from mnist_dvc.errors import PipelineError
from mnist_dvc.formats.prepared_arrays import read_prepared, read_prepared_images, write_prepared
from mnist_dvc.params.preprocess import PreprocessParams
from mnist_dvc.sources import MnistSplits
from mnist_dvc.splits import stratified_split
from stages import preprocess
from stages.fetch import write_raw
from stages.preprocess import prepare_splits

KEY = "preprocess.validation_size"


def test_checked_images_gain_a_channel_axis(digits: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = digits
    checked = check_labelled_images(images, labels, "f")
    assert checked.images.shape == (60, 28, 28, 1) and checked.images.dtype == np.uint8


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (
            np.zeros((2, 28, 28), np.uint8),
            np.zeros(3, np.uint8),
            r"expected one label per image \(2 images\). Received: labels of shape \(3,\)",
        ),
        (
            np.zeros((2, 28, 27), np.uint8),
            np.zeros(2, np.uint8),
            r"expected images of 28x28 pixels, shape \(n, 28, 28\). Received: \(2, 28, 27\)",
        ),
        (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8), r"expected at least one image. Received: 0"),
        (np.zeros((2, 28, 28), np.uint8), np.array([3, 10], np.uint8), r"expected labels 0-9. Received: 10 at index 1"),
        (np.zeros((2, 28, 28), np.float32), np.zeros(2, np.uint8), r"expected uint8 images. Received: float32"),
        (np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.int64), r"expected uint8 labels. Received: int64"),
    ],
    ids=["count-mismatch", "wrong-shape", "empty", "label-out-of-range", "wrong-dtype", "wrong-label-dtype"],
)
def test_bad_splits_are_refused(images: np.ndarray, labels: np.ndarray, message: str) -> None:
    with pytest.raises(PipelineError, match=r"raw/x: " + message):
        check_labelled_images(images, labels, "raw/x")


def test_stratified_split_keeps_class_proportions() -> None:
    labels = np.repeat(np.arange(10, dtype=np.uint8), [100, 200, 100, 100, 100, 100, 100, 100, 100, 50])
    train, validation = stratified_split(labels, 0.1, random_seed=3, key=KEY)
    assert len(np.intersect1d(train, validation)) == 0
    assert len(train) + len(validation) == len(labels)
    assert np.bincount(labels[validation]).tolist() == [10, 20, 10, 10, 10, 10, 10, 10, 10, 5]
    assert np.all(np.diff(train) > 0) and np.all(np.diff(validation) > 0)


def test_stratified_split_depends_on_the_seed_only() -> None:
    labels = np.repeat(np.arange(10, dtype=np.uint8), 30)
    first = stratified_split(labels, 0.2, random_seed=1, key=KEY)
    np.testing.assert_array_equal(first[1], stratified_split(labels, 0.2, random_seed=1, key=KEY)[1])
    assert not np.array_equal(first[1], stratified_split(labels, 0.2, random_seed=2, key=KEY)[1])


def test_every_class_with_two_images_is_in_both_splits() -> None:
    labels = np.repeat(np.arange(10, dtype=np.uint8), 2)
    train, validation = stratified_split(labels, 0.01, random_seed=0, key=KEY)
    assert sorted(labels[validation].tolist()) == list(range(10))
    assert sorted(labels[train].tolist()) == list(range(10))


def test_too_few_images_to_split_is_an_error() -> None:
    with pytest.raises(PipelineError, match=r"preprocess.validation_size=0.5: expected at least one image to hold out"):
        stratified_split(np.arange(3, dtype=np.uint8), 0.5, random_seed=0, key=KEY)


def test_prepared_splits_round_trip(tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = digits
    train = check_labelled_images(images, labels, "train")
    test = LabelledImages(train.images[:7], train.labels[:7])
    splits = prepare_splits(train, test, PreprocessParams(validation_size=0.5, random_seed=0))
    assert len(splits["train"].labels) == 30 and len(splits["val"].labels) == 30
    write_prepared(splits, images[:5, ..., np.newaxis], tmp_path / "prepared")
    for name, split in splits.items():
        restored = read_prepared(tmp_path / "prepared", name)
        np.testing.assert_array_equal(restored.images, split.images)
        np.testing.assert_array_equal(restored.labels, split.labels)
    np.testing.assert_array_equal(read_prepared_images(tmp_path / "prepared"), images[:5, ..., np.newaxis])


def test_a_missing_prepared_array_is_named(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"test_images.npy: expected a prepared array \(run the preprocess stage\)"):
        read_prepared(tmp_path, "test")


def test_a_corrupt_prepared_array_is_named(tmp_path: Path) -> None:
    (tmp_path / "val_images.npy").write_bytes(b"not numpy")
    (tmp_path / "val_labels.npy").write_bytes(b"not numpy")
    with pytest.raises(PipelineError, match=r"val_images.npy: expected a .npy array. Received: unreadable file"):
        read_prepared(tmp_path, "val")


def test_main_writes_nothing_when_the_raw_data_is_bad(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = digits
    bad_labels = labels.copy()
    bad_labels[5] = 12
    write_raw(MnistSplits(images, labels, images[:10], bad_labels[:10], images[:10]), tmp_path / "raw")
    params = tmp_path / "params.yaml"
    params.write_text("preprocess: {validation_size: 0.2, random_seed: 0}\n")
    argv = ["--params", str(params), "--raw-dir", str(tmp_path / "raw"), "--out-dir", str(tmp_path / "prepared")]
    assert preprocess.main(argv) == 1
    assert (
        "t10k-images-idx3-ubyte + t10k-labels-idx1-ubyte: expected labels 0-9. Received: 12 at index 5"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "prepared").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
