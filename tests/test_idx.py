"""IDX reading and writing: the round trip, and every malformed file refused with its path."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from mnist_dvc.errors import PipelineError
from mnist_dvc.formats.idx import decode_idx, encode_idx, read_idx, write_idx


def test_images_round_trip(tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    images, _ = digits
    write_idx(tmp_path / "images", images)
    restored = read_idx(tmp_path / "images", expected_ndim=3)
    assert restored.dtype == np.uint8
    np.testing.assert_array_equal(restored, images)


def test_labels_round_trip_through_gzip(tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    _, labels = digits
    (tmp_path / "labels.gz").write_bytes(gzip.compress(encode_idx(labels)))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels.gz", expected_ndim=1), labels)


def test_header_matches_the_mnist_specification() -> None:
    payload = encode_idx(np.zeros((2, 28, 28), dtype=np.uint8))
    assert payload[:4] == b"\x00\x00\x08\x03"
    assert struct.unpack(">3I", payload[4:16]) == (2, 28, 28)
    assert len(payload) == 16 + 2 * 28 * 28


def test_only_uint8_arrays_are_written() -> None:
    with pytest.raises(ValueError, match=r"Expected a uint8 array. Received: dtype=int64"):
        encode_idx(np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize(
    ("payload", "ndim", "message"),
    [
        (b"\x00\x00", 1, r"expected an IDX header of at least 4 bytes. Received: 2 bytes"),
        (b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00" * 4, 1, r"expected IDX magic number 0x00000801"),
        (b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00", 1, r"expected IDX magic number"),
        (encode_idx(np.zeros((2, 3), dtype=np.uint8)), 3, r"expected 3 dimensions. Received: 2"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 2), 3, r"expected a 16-byte header"),
        (
            encode_idx(np.zeros((2, 4, 4), dtype=np.uint8))[:-1],
            3,
            r"expected 48 bytes, as the header's shape \(2, 4, 4\) says. Received: 47 bytes \(truncated\)",
        ),
        (
            encode_idx(np.zeros(5, dtype=np.uint8)) + b"\x00",
            1,
            r"expected 13 bytes, as the header's shape \(5,\) says. Received: 14 bytes \(extra data\)",
        ),
    ],
    ids=["short", "wrong-type-code", "wrong-magic", "wrong-ndim", "short-header", "truncated", "trailing-bytes"],
)
def test_malformed_payloads_are_refused(payload: bytes, ndim: int, message: str) -> None:
    with pytest.raises(PipelineError, match=r"some-file: " + message):
        decode_idx(payload, "some-file", expected_ndim=ndim)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"absent: expected an IDX file. Received: no such file"):
        read_idx(tmp_path / "absent", expected_ndim=1)


def test_corrupt_gzip_is_refused(tmp_path: Path) -> None:
    broken = gzip.compress(encode_idx(np.arange(10, dtype=np.uint8)))[:-6]
    (tmp_path / "labels.gz").write_bytes(broken)
    with pytest.raises(PipelineError, match=r"labels.gz: expected a valid gzip stream"):
        read_idx(tmp_path / "labels.gz", expected_ndim=1)
