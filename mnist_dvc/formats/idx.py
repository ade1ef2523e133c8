"""Reading and writing MNIST's IDX format (big-endian header, then raw unsigned bytes).

Only the unsigned-byte variant MNIST uses is supported: images are `idx3` (n, rows, cols), labels `idx1` (n,).
Files may be gzip-compressed; that is detected from the gzip magic bytes, not the file name.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from mnist_dvc.atomic_files import write_bytes_atomically
from mnist_dvc.errors import PipelineError
from mnist_dvc.input_files import read_input_bytes

_UNSIGNED_BYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
# The images the predict stage labels: Kaggle's unlabelled test.csv, or a copy of the test images for
# the sources whose test set is labelled. Every source writes all five files, so stages downstream
# never ask where the data came from.
PREDICT_IMAGES = "predict-images-idx3-ubyte"
RAW_FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS, PREDICT_IMAGES)


def encode_idx(array: np.ndarray) -> bytes:
    """Serialise a uint8 array of 1 to 3 dimensions as IDX bytes."""
    if array.dtype != np.uint8:
        raise ValueError(f"Expected a uint8 array. Received: dtype={array.dtype}")
    if not 1 <= array.ndim <= 3:
        raise ValueError(f"Expected 1 to 3 dimensions. Received: shape={array.shape}")
    header = struct.pack(">BBBB", 0, 0, _UNSIGNED_BYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def decode_idx(payload: bytes, source: str, expected_ndim: int) -> np.ndarray:
    """Parse IDX bytes into a uint8 array, checking magic, dimension count and size against the header.

    `source` names the file in error messages.
    """
    if len(payload) < 4:
        raise PipelineError(f"{source}: expected an IDX header of at least 4 bytes. Received: {len(payload)} bytes")
    zero_a, zero_b, type_code, ndim = struct.unpack(">BBBB", payload[:4])
    if zero_a != 0 or zero_b != 0 or type_code != _UNSIGNED_BYTE:
        raise PipelineError(
            f"{source}: expected IDX magic number 0x0000080{expected_ndim} (unsigned bytes). "
            f"Received: 0x{payload[:4].hex()}"
        )
    if ndim != expected_ndim:
        raise PipelineError(f"{source}: expected {expected_ndim} dimensions. Received: {ndim}")
    header_size = 4 + 4 * ndim
    if len(payload) < header_size:
        raise PipelineError(f"{source}: expected a {header_size}-byte header. Received: {len(payload)} bytes in all")
    shape = struct.unpack(f">{ndim}I", payload[4:header_size])
    expected_size = declared_size(payload, ndim)
    if len(payload) != expected_size:
        raise PipelineError(
            f"{source}: expected {expected_size} bytes, as the header's shape {shape} says. "
            f"Received: {len(payload)} bytes ({'truncated' if len(payload) < expected_size else 'extra data'})"
        )
    return np.frombuffer(payload, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def declared_size(header: bytes, ndim: int) -> int:
    """The whole file's size in bytes that an IDX header of `ndim` dimensions declares (a Python int:
    four dimensions near 2**32 multiply past what 64 bits can hold)."""
    dimensions: tuple[int, ...] = struct.unpack(f">{ndim}I", header[4 : 4 + 4 * ndim])
    return 4 + 4 * ndim + math.prod(dimensions)


def gunzip(payload: bytes, source: str) -> bytes:
    """The decompressed bytes of a gzip stream; `source` names it in the error for a damaged one."""
    try:
        return gzip.decompress(payload)
    except (OSError, EOFError, zlib.error) as error:
        raise PipelineError(f"{source}: expected a valid gzip stream. Received: {error}") from None


def gunzip_idx(payload: bytes, source: str, expected_ndim: int) -> bytes:
    """The decompressed bytes of a gzip'd IDX file, never inflating more than its header declares (+1 byte
    to tell "more"), so that a small file that inflates to gigabytes is refused with bounded memory."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(payload, 4 + 4 * 255)  # enough for any IDX header
        # Inflate further only up to what a whole header of the expected dimension count declares; any other
        # header is decode_idx's to name from the bytes already here.
        whole_header = len(data) >= 4 and data[3] == expected_ndim and len(data) >= 4 + 4 * expected_ndim
        limit = declared_size(data, expected_ndim) if whole_header else len(data)
        # Each call inflates at most up to the limit; it stops when the stream ends or the input is used up.
        while not inflater.eof and inflater.unconsumed_tail and len(data) <= limit:
            data += inflater.decompress(inflater.unconsumed_tail, limit + 1 - len(data))
        if len(data) > limit:
            raise PipelineError(
                f"{source}: expected {limit} bytes once decompressed, as the IDX header says. "
                f"Received: more (stopped decompressing at {len(data)} bytes)"
            )
        if not inflater.eof:
            raise PipelineError(f"{source}: expected a valid gzip stream. Received: a stream that ends early")
        if inflater.unused_data:
            raise PipelineError(
                f"{source}: expected one gzip stream. Received: {len(inflater.unused_data)} more bytes after its end"
            )
    except zlib.error as error:
        raise PipelineError(f"{source}: expected a valid gzip stream. Received: {error}") from None
    return data


def read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """Read an IDX file (plain or gzip) into a uint8 array."""
    payload = read_input_bytes(path, "an IDX file")
    if payload[:2] == _GZIP_MAGIC:
        payload = gunzip_idx(payload, str(path), expected_ndim)
    return decode_idx(payload, str(path), expected_ndim)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an uncompressed IDX file, atomically."""
    write_bytes_atomically(path, encode_idx(array))
