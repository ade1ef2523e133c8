"""Bad input never gets through: one parametrized case per way a file, a CSV row, a param or an input can be wrong.

Every case starts from a valid set of inputs, breaks one thing, runs the stage's real `main(argv)` and
asserts what a user sees: exit status 1, one `error:` line that names the file (and the line, column
or key where that applies) with what was expected and what was received, and no output written at
all: not even a temporary file is left in the output folder.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib
import os
import re
import shlex
import struct
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from mnist_dvc.digit_arrays import check_labelled_images
from mnist_dvc.formats import idx
from mnist_dvc.formats.prepared_arrays import write_prepared
from mnist_dvc.formats.training_log import CURVES
from mnist_dvc.params.preprocess import PreprocessParams
from mnist_dvc.sources import MnistSplits
from stages.fetch import write_raw
from stages.preprocess import prepare_splits
from tests.conftest import PROJECT_ROOT, synthetic_digits
from tests.sources import kaggle_csv
from tools.workspace import ALL_STAGES

Breaker = Callable[[Path], None]


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    stage: str
    breaks: Breaker
    expected: tuple[str, ...]  # fragments of the error line, in any order


# --- building and breaking inputs -----------------------------------------------------------------


def set_param(section: str, key: str, value: object) -> Breaker:
    def breaks(root: Path) -> None:
        document = yaml.safe_load((root / "params.yaml").read_text())
        document[section][key] = value
        (root / "params.yaml").write_text(yaml.safe_dump(document))

    return breaks


def del_param(section: str, key: str | None = None) -> Breaker:
    def breaks(root: Path) -> None:
        document = yaml.safe_load((root / "params.yaml").read_text())
        if key is None:
            del document[section]
        else:
            del document[section][key]
        (root / "params.yaml").write_text(yaml.safe_dump(document))

    return breaks


def write(relative: str, payload: bytes | str) -> Breaker:
    def breaks(root: Path) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload.encode() if isinstance(payload, str) else payload)

    return breaks


def delete(relative: str) -> Breaker:
    return lambda root: (root / relative).unlink()


def edit(relative: str, change: Callable[[bytes], bytes]) -> Breaker:
    def breaks(root: Path) -> None:
        path = root / relative
        path.write_bytes(change(path.read_bytes()))

    return breaks


def both(*breakers: Breaker) -> Breaker:
    def breaks(root: Path) -> None:
        for breaker in breakers:
            breaker(root)

    return breaks


def idx_source(root: Path) -> None:
    set_param("fetch", "source", "idx")(root)


def kaggle_source(root: Path) -> None:
    set_param("fetch", "source", "kaggle")(root)
    set_param("fetch", "local_path", "kaggle")(root)


def header(ndim: int, *shape: int, type_code: int = 0x08) -> bytes:
    return struct.pack(">BBBB", 0, 0, type_code, ndim) + struct.pack(f">{len(shape)}I", *shape)


def csv_line(line: int, replacement: Callable[[str], str]) -> Callable[[bytes], bytes]:
    """Replace the 1-based `line` of a CSV with `replacement(line)`."""

    def change(payload: bytes) -> bytes:
        lines = payload.decode().split("\n")
        lines[line - 1] = replacement(lines[line - 1])
        return "\n".join(lines).encode()

    return change


def csv_cell(line: int, column: int, value: str) -> Callable[[bytes], bytes]:
    """Replace the cell at 1-based (line, column) of a CSV."""

    def replace_cell(text: str) -> str:
        cells = text.split(",")
        cells[column - 1] = value
        return ",".join(cells)

    return csv_line(line, replace_cell)


def save_lambda_model(root: Path) -> None:
    """A model whose Lambda layer holds Python code: loading it would run that code."""
    import keras

    inputs = keras.Input((28, 28, 1))
    scaled = keras.layers.Lambda(lambda pixels: pixels * 2.0)(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(scaled))
    keras.Model(inputs, outputs).save(root / "model.keras")


def add_to_model(name: str, payload: bytes) -> Breaker:
    """The valid model archive with one more (deflated) member."""

    def breaks(root: Path) -> None:
        with zipfile.ZipFile(root / "model.keras", "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(name, payload)

    return breaks


def save_wrong_shape_model(root: Path) -> None:
    import keras

    from mnist_dvc.model.files import save_model

    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs))
    save_model(keras.Model(inputs, outputs), root / "model.keras")


TRAIN_CSV = "kaggle/train.csv"
TEST_CSV = "kaggle/test.csv"
EXTERNAL = "external"
TRAIN_IDX = f"{EXTERNAL}/{idx.TRAIN_IMAGES}"
LABELS_IDX = f"{EXTERNAL}/{idx.TRAIN_LABELS}"


def kaggle_zip(members: dict[str, bytes]) -> Breaker:
    def breaks(root: Path) -> None:
        for name in ("train.csv", "test.csv"):
            (root / "kaggle" / name).unlink()
        with zipfile.ZipFile(root / "kaggle" / "digit-recognizer.zip", "w") as archive:
            for name, payload in members.items():
                archive.writestr(name, payload)

    return breaks


def kaggle_zip_with(
    train_flags: int = 0,
    train_method: int | None = None,
    extra: dict[str, bytes] | None = None,
    train_name: str = "train.csv",
    train_size_change: int = 0,
    train_content: bytes | None = None,
) -> Breaker:
    """The valid CSVs zipped (deflated), with train.csv marked encrypted (`train_flags`), its compression method
    set to `train_method` in both headers, `extra` members added, stored as `train_name`, or declaring
    `train_size_change` bytes more than it inflates to, or holding `train_content` instead."""

    def breaks(root: Path) -> None:
        files = {name: (root / "kaggle" / name).read_bytes() for name in ("train.csv", "test.csv")}
        for name in files:
            (root / "kaggle" / name).unlink()
        path = root / "kaggle" / "digit-recognizer.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(train_name, files["train.csv"] if train_content is None else train_content)
            archive.writestr("test.csv", files["test.csv"])
            for name, payload in (extra or {}).items():
                archive.writestr(name, payload)
        # zipfile writes neither, so both headers of the first member are patched: flags at offsets 6 and 8,
        # the compression method at 8 and 10 (local header, central directory entry).
        data = bytearray(path.read_bytes())
        central = data.index(b"PK\x01\x02")
        for local, in_central, value in ((6, 8, train_flags), (8, 10, train_method)):
            if value:
                data[local : local + 2] = data[central + in_central : central + in_central + 2] = struct.pack(
                    "<H", value
                )
        if train_size_change:  # the uncompressed size: offset 22 of the local header, 24 of the central entry
            size = struct.unpack("<I", data[22:26])[0] + train_size_change
            data[22:26] = data[central + 24 : central + 28] = struct.pack("<I", size)
        path.write_bytes(bytes(data))

    return breaks


CASES = [
    # IDX files (the idx source reads them; fetch must refuse them before writing data/raw)
    Case(
        "idx-wrong-magic",
        "fetch",
        both(idx_source, edit(TRAIN_IDX, lambda b: b"\x00\x00\x09\x03" + b[4:])),
        (TRAIN_IDX, "expected IDX magic number 0x00000803", "Received: 0x00000903"),
    ),
    Case(
        "idx-wrong-dimension-count",
        "fetch",
        both(idx_source, write(TRAIN_IDX, header(2, 3, 784) + bytes(3 * 784))),
        (TRAIN_IDX, "expected 3 dimensions. Received: 2"),
    ),
    Case(
        "idx-header-counts-disagree-with-size",
        "fetch",
        both(idx_source, edit(TRAIN_IDX, lambda b: b[:4] + struct.pack(">I", 59) + b[8:])),
        (
            TRAIN_IDX,
            "expected 46272 bytes, as the header's shape (59, 28, 28) says. Received: 47056 bytes (extra data)",
        ),
    ),
    Case(
        "idx-truncated-data",
        "fetch",
        both(idx_source, edit(TRAIN_IDX, lambda b: b[:-100])),
        (TRAIN_IDX, "expected 47056 bytes, as the header's shape (60, 28, 28) says. Received: 46956 bytes (truncated)"),
    ),
    Case(
        "idx-truncated-header",
        "fetch",
        both(idx_source, edit(TRAIN_IDX, lambda b: b[:10])),
        (TRAIN_IDX, "expected a 16-byte header. Received: 10 bytes"),
    ),
    Case(
        "idx-empty-file",
        "fetch",
        both(idx_source, write(TRAIN_IDX, b"")),
        (TRAIN_IDX, "expected an IDX header of at least 4 bytes. Received: 0 bytes"),
    ),
    Case(
        "idx-image-and-label-counts-differ",
        "fetch",
        both(idx_source, write(LABELS_IDX, idx.encode_idx(np.zeros(59, np.uint8)))),
        (
            f"{TRAIN_IDX} + {idx.TRAIN_LABELS}: expected one label per image (60 images). "
            "Received: labels of shape (59,)",
        ),
    ),
    Case(
        "idx-label-outside-0-9",
        "fetch",
        both(idx_source, write(LABELS_IDX, idx.encode_idx(np.array([3] * 7 + [10] + [1] * 52, np.uint8)))),
        (f"{TRAIN_IDX} + {idx.TRAIN_LABELS}: expected labels 0-9. Received: 10 at index 7",),
    ),
    Case(
        "idx-images-not-28x28",
        "fetch",
        both(idx_source, write(TRAIN_IDX, idx.encode_idx(np.zeros((60, 32, 32), np.uint8)))),
        (TRAIN_IDX, "expected images of 28x28 pixels, shape (n, 28, 28). Received: (60, 32, 32)"),
    ),
    Case(
        "idx-no-images",
        "fetch",
        both(idx_source, write(TRAIN_IDX, idx.encode_idx(np.zeros((0, 28, 28), np.uint8)))),
        (TRAIN_IDX, "expected at least one image. Received: 0"),
    ),
    Case(
        "idx-corrupt-gzip",
        "fetch",
        both(idx_source, delete(TRAIN_IDX), write(TRAIN_IDX + ".gz", b"\x1f\x8b\x08\x00garbage")),
        (TRAIN_IDX + ".gz", "expected a valid gzip stream. Received:"),
    ),
    Case(
        "idx-truncated-gzip",
        "fetch",
        both(
            idx_source,
            delete(TRAIN_IDX),
            write(TRAIN_IDX + ".gz", gzip.compress(idx.encode_idx(np.zeros((60, 28, 28), np.uint8)))[:-20]),
        ),
        (TRAIN_IDX + ".gz", "expected a valid gzip stream. Received:"),
    ),
    Case(
        "idx-dimensions-overflow-64-bits",
        "fetch",
        both(idx_source, write(TRAIN_IDX, header(3, 2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(100))),
        (
            TRAIN_IDX,
            "expected 79228162458924105385300197391 bytes, as the header's shape "
            "(4294967295, 4294967295, 4294967295) says. Received: 116 bytes (truncated)",
        ),
    ),
    Case(
        "idx-gzip-bomb",
        "fetch",
        both(
            idx_source,
            delete(TRAIN_IDX),
            write(
                TRAIN_IDX + ".gz",
                gzip.compress(idx.encode_idx(np.zeros((60, 28, 28), np.uint8)) + bytes(50_000_000), compresslevel=9),
            ),
        ),
        (
            TRAIN_IDX + ".gz",
            "expected 47056 bytes once decompressed, as the IDX header says. "
            "Received: more (stopped decompressing at 47057 bytes)",
        ),
    ),
    Case(
        "idx-gzip-with-trailing-data",
        "fetch",
        both(
            idx_source,
            delete(TRAIN_IDX),
            write(TRAIN_IDX + ".gz", gzip.compress(idx.encode_idx(np.zeros((60, 28, 28), np.uint8))) + b"junk"),
        ),
        (TRAIN_IDX + ".gz", "expected one gzip stream. Received: 4 more bytes after its end"),
    ),
    Case(
        "raw-file-is-a-directory",
        "preprocess",
        both(delete(f"raw/{idx.TEST_IMAGES}"), lambda root: (root / f"raw/{idx.TEST_IMAGES}").mkdir()),
        (f"raw/{idx.TEST_IMAGES}: expected an IDX file. Received: a directory",),
    ),
    Case(
        "raw-file-is-a-named-pipe",
        "preprocess",
        both(delete(f"raw/{idx.TEST_LABELS}"), lambda root: os.mkfifo(root / f"raw/{idx.TEST_LABELS}")),
        (f"raw/{idx.TEST_LABELS}: expected an IDX file. Received: a named pipe",),
    ),
    Case(
        "idx-missing-file",
        "fetch",
        both(idx_source, delete(f"{EXTERNAL}/{idx.TEST_LABELS}")),
        (EXTERNAL, f"expected {idx.TEST_LABELS} or {idx.TEST_LABELS}.gz. Received: {idx.TEST_IMAGES}"),
    ),
    Case(
        "idx-plain-and-gzipped-copies",
        "fetch",
        both(
            idx_source,
            edit(TRAIN_IDX, lambda b: b),
            lambda root: (root / (TRAIN_IDX + ".gz")).write_bytes(gzip.compress((root / TRAIN_IDX).read_bytes())),
        ),
        (EXTERNAL, f"expected one of {idx.TRAIN_IMAGES} and {idx.TRAIN_IMAGES}.gz. Received: both"),
    ),
    Case(
        "idx-folder-missing",
        "fetch",
        both(idx_source, set_param("fetch", "local_path", "nowhere")),
        ("nowhere (fetch.local_path): expected a folder holding the four IDX files. Received: no such folder",),
    ),
    # The raw folder preprocess reads
    Case(
        "raw-file-missing",
        "preprocess",
        delete(f"raw/{idx.PREDICT_IMAGES}"),
        (f"raw/{idx.PREDICT_IMAGES}: expected an IDX file. Received: no such file",),
    ),
    Case(
        "raw-test-label-outside-0-9",
        "preprocess",
        write(f"raw/{idx.TEST_LABELS}", idx.encode_idx(np.array([1] * 9 + [12], np.uint8))),
        (f"raw/{idx.TEST_IMAGES} + {idx.TEST_LABELS}: expected labels 0-9. Received: 12 at index 9",),
    ),
    Case(
        "raw-truncated-images",
        "preprocess",
        edit(f"raw/{idx.TRAIN_IMAGES}", lambda b: b[:-1]),
        (f"raw/{idx.TRAIN_IMAGES}: expected 47056 bytes, as the header's shape (60, 28, 28) says. Received: 47055",),
    ),
    # Kaggle CSVs
    Case(
        "csv-missing-header",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, lambda b: b.split(b"\n", 1)[1])),
        (TRAIN_CSV + " line 1, column 1", "so column 1 named 'label'", "is the header line missing?"),
    ),
    Case(
        "csv-renamed-header",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_cell(1, 5, "pixel_3"))),
        (TRAIN_CSV + " line 1, column 5", "column 5 named 'pixel3'. Received: 'pixel_3'"),
    ),
    Case(
        "csv-header-too-short",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_line(1, lambda line: line.rsplit(",", 1)[0]))),
        (TRAIN_CSV + " line 1", "(785 columns). Received: 784 columns"),
    ),
    Case(
        "csv-row-with-too-many-values",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_line(9, lambda line: line + ",0"))),
        (TRAIN_CSV + " line 9: expected 785 comma-separated values. Received: 786",),
    ),
    Case(
        "csv-row-with-too-few-values",
        "fetch",
        both(kaggle_source, edit(TEST_CSV, csv_line(4, lambda line: line.rsplit(",", 1)[0]))),
        (TEST_CSV + " line 4: expected 784 comma-separated values. Received: 783",),
    ),
    Case(
        "csv-empty-cell",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_cell(5, 300, ""))),
        (TRAIN_CSV + " line 5, column 300 (pixel298): expected an integer. Received: an empty cell",),
    ),
    Case(
        "csv-non-numeric",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_cell(3, 10, "abc"))),
        (TRAIN_CSV + " line 3, column 10 (pixel8): expected an integer. Received: 'abc'",),
    ),
    Case(
        "csv-nan",
        "fetch",
        both(kaggle_source, edit(TEST_CSV, csv_cell(2, 1, "NaN"))),
        (TEST_CSV + " line 2, column 1 (pixel0): expected an integer. Received: 'NaN'",),
    ),
    Case(
        "csv-pixel-above-255",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_cell(7, 2, "256"))),
        (TRAIN_CSV + " line 7, column 2 (pixel0): expected a pixel value from 0 to 255. Received: 256",),
    ),
    Case(
        "csv-negative-pixel",
        "fetch",
        both(kaggle_source, edit(TEST_CSV, csv_cell(3, 784, "-1"))),
        (TEST_CSV + " line 3, column 784 (pixel783): expected a pixel value from 0 to 255. Received: -1",),
    ),
    Case(
        "csv-fractional-pixel",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_cell(2, 100, "12.5"))),
        (TRAIN_CSV + " line 2, column 100 (pixel98): expected an integer. Received: '12.5'",),
    ),
    Case(
        "csv-pixel-in-exponent-notation",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_cell(5, 40, "1e2"))),
        (TRAIN_CSV + " line 5, column 40 (pixel38): expected an integer. Received: '1e2'",),
    ),
    Case(
        "csv-pixel-written-as-a-float",
        "fetch",
        both(kaggle_source, edit(TEST_CSV, csv_cell(3, 7, "5.0"))),
        (TEST_CSV + " line 3, column 7 (pixel6): expected an integer. Received: '5.0'",),
    ),
    Case(
        "csv-boolean-label",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_cell(2, 1, "TRUE"))),
        (TRAIN_CSV + " line 2, column 1 (label): expected an integer. Received: 'TRUE'",),
    ),
    Case(
        "csv-carriage-return-inside-a-line",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_cell(6, 3, "4\r5"))),
        (
            TRAIN_CSV
            + " line 6: expected lines that end with \\n or \\r\\n. Received: a carriage return inside the line",
        ),
    ),
    Case(
        "csv-nul-byte-after-the-start",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_cell(40, 3, "4\x005"))),
        (TRAIN_CSV + ": expected a text CSV file. Received: binary data (NUL bytes)",),
    ),
    Case(
        "csv-label-above-9",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_cell(6, 1, "10"))),
        (TRAIN_CSV + " line 6, column 1 (label): expected a label from 0 to 9. Received: 10",),
    ),
    Case(
        "csv-label-not-a-number",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_cell(2, 1, "seven"))),
        (TRAIN_CSV + " line 2, column 1 (label): expected an integer. Received: 'seven'",),
    ),
    Case(
        "csv-empty-file",
        "fetch",
        both(kaggle_source, write(TRAIN_CSV, b"")),
        (TRAIN_CSV + ": expected a CSV file with a header line. Received: an empty file",),
    ),
    Case(
        "csv-header-only",
        "fetch",
        both(kaggle_source, edit(TEST_CSV, lambda b: b.split(b"\n", 1)[0] + b"\n")),
        (TEST_CSV + ": expected at least one data row after the header. Received: none",),
    ),
    Case(
        "csv-binary-file",
        "fetch",
        both(kaggle_source, write(TRAIN_CSV, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")),
        (TRAIN_CSV + ": expected a text CSV file. Received: binary data",),
    ),
    Case(
        "csv-not-utf8",
        "fetch",
        both(kaggle_source, write(TRAIN_CSV, "label,pixel0\nquatre-vingt-dix-neuf \xe9".encode("latin-1"))),
        (TRAIN_CSV + ": expected a UTF-8 text CSV file. Received: bytes that are not text (0xe9 at byte",),
    ),
    Case(
        "csv-json-instead",
        "fetch",
        both(kaggle_source, write(TRAIN_CSV, '{"label": 3, "pixels": []}\n')),
        (TRAIN_CSV + " line 1: expected the header label,pixel0,...,pixel783 (785 columns). Received: 2 columns",),
    ),
    Case(
        "csv-labels-in-test-csv",
        "fetch",
        both(kaggle_source, edit(TEST_CSV, lambda b: b.replace(b"pixel0,", b"label,pixel0,", 1))),
        (TEST_CSV + " line 1: expected the header pixel0,pixel1,...,pixel783 (784 columns). Received: 785 columns",),
    ),
    Case(
        "csv-blank-line-inside",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_line(4, lambda _l: ""))),
        (TRAIN_CSV + " line 4: expected a row of comma-separated values. Received: an empty line",),
    ),
    Case(
        "csv-too-few-rows-to-hold-out",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, lambda b: b"\n".join(b.split(b"\n")[:2]) + b"\n")),
        ("fetch.kaggle_holdout_size=0.1: expected at least one image to hold out. Received: 1 labelled images",),
    ),
    Case(
        "kaggle-zip-without-train-csv",
        "fetch",
        both(kaggle_source, kaggle_zip({"test.csv": b"pixel0\n1\n"})),
        ("digit-recognizer.zip: expected a zip holding train.csv and test.csv. Received: test.csv",),
    ),
    Case(
        "kaggle-corrupt-zip",
        "fetch",
        both(kaggle_source, kaggle_zip({}), write("kaggle/digit-recognizer.zip", b"PK\x03\x04 not really a zip")),
        ("digit-recognizer.zip: expected a valid zip file. Received:",),
    ),
    Case(
        "kaggle-zip-with-two-train-csvs",
        "fetch",
        both(kaggle_source, kaggle_zip_with(extra={"old/train.csv": b"label,pixel0\n1,0\n"})),
        ("digit-recognizer.zip: expected one train.csv. Received: 2 (old/train.csv, train.csv)",),
    ),
    Case(
        "kaggle-zip-member-encrypted",
        "fetch",
        both(kaggle_source, kaggle_zip_with(train_flags=0x1)),
        ("digit-recognizer.zip:train.csv: expected an unencrypted zip member. Received: an encrypted one",),
    ),
    Case(
        "kaggle-zip-unknown-compression",
        "fetch",
        both(kaggle_source, kaggle_zip_with(train_method=93)),
        (
            "digit-recognizer.zip:train.csv: expected a zip member stored or compressed with deflate, bzip2 or lzma. "
            "Received: compression method 93",
        ),
    ),
    Case(
        "kaggle-zip-bomb",
        "fetch",
        both(kaggle_source, kaggle_zip_with(train_content=b"0," * 25_000_000)),
        (
            "digit-recognizer.zip:train.csv: expected a member that inflates to at most 100 times its compressed size",
            "declaring 50000000 (a zip bomb?)",
        ),
    ),
    Case(
        "kaggle-zip-member-inflates-past-its-size",
        "fetch",
        both(kaggle_source, kaggle_zip_with(train_size_change=-100)),
        ("digit-recognizer.zip: expected a valid zip file. Received: Bad CRC-32 for file 'train.csv'",),
    ),
    Case(
        "kaggle-zip-member-outside-the-folder",
        "fetch",
        both(kaggle_source, kaggle_zip_with(train_name="../train.csv")),
        ("digit-recognizer.zip: expected members named inside the archive. Received: a member named '../train.csv'",),
    ),
    Case(
        "csv-pixel-beyond-64-bits",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_cell(4, 30, "18446744073709551615"))),
        (
            TRAIN_CSV
            + " line 4, column 30 (pixel28): expected a pixel value from 0 to 255. Received: 18446744073709551615",
        ),
    ),
    Case(
        "csv-pixel-beyond-any-integer-type",
        "fetch",
        both(kaggle_source, edit(TEST_CSV, csv_cell(2, 5, "99999999999999999999999"))),
        (
            TEST_CSV
            + " line 2, column 5 (pixel4): expected a pixel value from 0 to 255. Received: 99999999999999999999999",
        ),
    ),
    Case(
        "csv-label-below-64-bits",
        "fetch",
        both(kaggle_source, edit(TRAIN_CSV, csv_cell(3, 1, "-9223372036854775809"))),
        (TRAIN_CSV + " line 3, column 1 (label): expected a label from 0 to 9. Received: -9223372036854775809",),
    ),
    Case(
        "kaggle-nothing-there",
        "fetch",
        both(kaggle_source, delete(TRAIN_CSV), delete(TEST_CSV), set_param("fetch", "local_path", "kaggle")),
        (
            "kaggle (fetch.local_path): expected Kaggle's train.csv and test.csv, or digit-recognizer.zip",
            "Received: an empty folder",
        ),
    ),
    # The url source, against a port nothing listens on (the loopback-server cases are in test_sources.py)
    Case(
        "url-unreachable",
        "fetch",
        both(
            set_param("fetch", "source", "url"),
            set_param("fetch", "mirrors", ["http://127.0.0.1:9/mnist/"]),
            set_param("fetch", "retries", 0),
        ),
        (
            "train-images-idx3-ubyte.gz: expected 9912422 bytes with sha256 440fcabf",
            "http://127.0.0.1:9/mnist/train-images-idx3-ubyte.gz: could not connect",
        ),
    ),
    # Params
    Case(
        "params-unknown-key",
        "fetch",
        set_param("fetch", "sorce", "url"),
        ("params.yaml: unknown key fetch.sorce. Expected one of:",),
    ),
    Case(
        "params-missing-key", "train", del_param("train", "batch_size"), ("params.yaml: missing key train.batch_size",)
    ),
    Case(
        "params-missing-section",
        "predict",
        del_param("predict"),
        ("params.yaml: expected a section 'predict' holding a mapping. Received: no such section",),
    ),
    Case(
        "params-wrong-type",
        "train",
        set_param("train", "epochs", "ten"),
        ("params.yaml: train.epochs must be an integer. Received: 'ten'",),
    ),
    Case(
        "params-bool-for-integer",
        "evaluate",
        set_param("evaluate", "batch_size", True),
        ("params.yaml: evaluate.batch_size must be an integer. Received: True",),
    ),
    Case(
        "params-validation-size-0",
        "preprocess",
        set_param("preprocess", "validation_size", 0),
        ("params.yaml: preprocess.validation_size must be a fraction strictly between 0 and 1. Received: 0.0",),
    ),
    Case(
        "params-validation-size-1",
        "preprocess",
        set_param("preprocess", "validation_size", 1),
        ("params.yaml: preprocess.validation_size must be a fraction strictly between 0 and 1. Received: 1.0",),
    ),
    Case(
        "params-negative-epochs",
        "train",
        set_param("train", "epochs", -2),
        ("params.yaml: train.epochs must be a positive integer. Received: -2",),
    ),
    Case(
        "params-unknown-source",
        "fetch",
        set_param("fetch", "source", "s3"),
        ("params.yaml: fetch.source must be one of: bundled, url, kaggle, idx. Received: 's3'",),
    ),
    Case(
        "params-unknown-model",
        "train",
        set_param("train", "model", "resnet50"),
        ("params.yaml: train.model must be one of: compact, tutorial. Received: 'resnet50'",),
    ),
    Case(
        "params-mirror-not-http",
        "fetch",
        set_param("fetch", "mirrors", ["ftp://example.org/mnist/"]),
        (
            "params.yaml: fetch.mirrors must be a list of http:// or https:// URLs. Received: 'ftp://example.org/mnist/'",
        ),
    ),
    Case(
        "params-url-without-mirrors",
        "fetch",
        both(set_param("fetch", "source", "url"), set_param("fetch", "mirrors", [])),
        ("params.yaml: fetch.mirrors must be at least one mirror URL when fetch.source is url",),
    ),
    Case(
        "params-invalid-yaml",
        "evaluate",
        write("params.yaml", "evaluate: {batch_size: 3\n"),
        ("params.yaml: expected valid YAML. Received:",),
    ),
    Case(
        "params-not-a-mapping",
        "predict",
        write("params.yaml", "- 1\n- 2\n"),
        ("params.yaml: expected a mapping of sections. Received: list",),
    ),
    Case(
        "params-is-a-directory",
        "evaluate",
        both(delete("params.yaml"), lambda root: (root / "params.yaml").mkdir()),
        ("params.yaml: expected a params file. Received: a directory",),
    ),
    Case(
        "params-is-a-named-pipe",
        "fetch",
        both(delete("params.yaml"), lambda root: os.mkfifo(root / "params.yaml")),
        ("params.yaml: expected a params file. Received: a named pipe",),
    ),
    Case(
        "params-not-utf8",
        "train",
        edit("params.yaml", lambda b: b + "# r\xe9glages\n".encode("latin-1")),
        ("params.yaml: expected a UTF-8 text file. Received: bytes that are not text (0xe9 at byte",),
    ),
    Case(
        "params-duplicate-key",
        "train",
        edit("params.yaml", lambda b: b.replace(b"train:\n", b"train:\n  epochs: 3\n", 1)),
        ("params.yaml: expected each key once per section. Received: 'epochs' on lines",),
    ),
    Case(
        "params-duplicate-section",
        "predict",
        edit("params.yaml", lambda b: b + b"predict:\n  batch_size: 8\n"),
        ("params.yaml: expected each key once per section. Received: 'predict' on lines",),
    ),
    Case(
        "params-nested-thousands-deep",
        "preprocess",
        write("params.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n"),
        ("params.yaml: expected valid YAML. Received: nested more than 50 levels deep",),
    ),
    Case(
        "params-file-missing",
        "train",
        delete("params.yaml"),
        ("params.yaml: expected a params file. Received: no such file",),
    ),
    # Missing or corrupt inputs of the later stages
    Case(
        "prepared-array-missing",
        "train",
        delete("prepared/val_labels.npy"),
        ("prepared/val_labels.npy: expected a prepared array (run the preprocess stage). Received: no such file",),
    ),
    Case(
        "prepared-array-corrupt",
        "evaluate",
        write("prepared/test_images.npy", b"\x93NUMPY garbage"),
        ("prepared/test_images.npy: expected a .npy array. Received: unreadable file",),
    ),
    Case(
        "prepared-array-wrong-shape",
        "predict",
        write("prepared/predict_images.npy", b""),
        ("prepared/predict_images.npy: expected a .npy array. Received: unreadable file",),
    ),
    Case(
        "prepared-array-header-declares-terabytes",
        "evaluate",
        write(
            "prepared/test_images.npy",
            b"\x93NUMPY\x01\x00v\x00"
            + (
                "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000000, 28, 28, 1), }".ljust(117) + "\n"
            ).encode(),
        ),
        (
            "prepared/test_images.npy: expected a .npy array. Received: unreadable file (128 bytes, where its header "
            "(shape (1000000000000, 28, 28, 1), uint8) says 784000000000128)",
        ),
    ),
    Case(
        "prepared-array-is-a-named-pipe",
        "train",
        both(delete("prepared/train_images.npy"), lambda root: os.mkfifo(root / "prepared/train_images.npy")),
        ("prepared/train_images.npy: expected a prepared array (run the preprocess stage). Received: a named pipe",),
    ),
    Case(
        "prepared-labels-outside-0-9",
        "train",
        lambda root: np.save(root / "prepared/train_labels.npy", np.full(40, 11, np.uint8)),
        ("prepared/train_images.npy + train_labels.npy: expected labels 0-9. Received: 11 at index 0",),
    ),
    Case(
        "prepared-images-flattened",
        "predict",
        lambda root: np.save(root / "prepared/predict_images.npy", np.zeros((5, 784), np.uint8)),
        ("prepared/predict_images.npy: expected shape (n, 28, 28, 1). Received: (5, 784)",),
    ),
    Case(
        "own-images-folder-missing",
        "predict",
        set_param("predict", "images", "my_digits"),
        ("my_digits (predict.images): expected a folder of image files (it may be empty). Received: no such folder",),
    ),
    Case(
        "own-images-folder-is-a-file",
        "predict",
        both(write("digit.png", b""), set_param("predict", "images", "digit.png")),
        ("digit.png (predict.images): expected a folder of image files (it may be empty). Received: a file",),
    ),
    Case(
        "training-curve-missing",
        "evaluate",
        delete("training/plots/metrics/val/loss.tsv"),
        ("training/plots/metrics/val/loss.tsv", "expected a dvclive curve (run the train stage)"),
    ),
    Case(
        "training-curve-is-a-directory",
        "evaluate",
        both(
            delete("training/plots/metrics/train/loss.tsv"),
            lambda root: (root / "training/plots/metrics/train/loss.tsv").mkdir(),
        ),
        (
            "training/plots/metrics/train/loss.tsv: expected a dvclive curve (run the train stage). "
            "Received: a directory",
        ),
    ),
    Case(
        "training-curve-step-skipped",
        "evaluate",
        write("training/plots/metrics/train/accuracy.tsv", "step\taccuracy\n0\t0.5\n2\t0.6\n"),
        ("train/accuracy.tsv, line 3", "expected step 1. Received: 2"),
    ),
    Case(
        "model-missing",
        "evaluate",
        delete("model.keras"),
        ("model.keras: expected a trained model (run the train stage). Received: no such file",),
    ),
    Case(
        "model-not-a-zip",
        "predict",
        write("model.keras", b"this is not a model"),
        ("model.keras: expected a .keras model archive. Received: unreadable file",),
    ),
    Case(
        "model-truncated",
        "evaluate",
        edit("model.keras", lambda b: b[: len(b) // 2]),
        ("model.keras: expected a .keras model archive. Received: unreadable file",),
    ),
    Case(
        "model-truncated-for-export",
        "export",
        edit("model.keras", lambda b: b[: len(b) // 3]),
        ("model.keras: expected a .keras model archive. Received: unreadable file",),
    ),
    Case(
        "prepared-calibration-images-missing",
        "export",
        delete("prepared/val_images.npy"),
        ("prepared/val_images.npy: expected a prepared array (run the preprocess stage). Received: no such file",),
    ),
    Case(
        "params-export-agreement-above-1",
        "export",
        set_param("export", "min_float_label_agreement", 2),
        ("params.yaml: export.min_float_label_agreement must be a fraction from 0 to 1. Received: 2",),
    ),
    Case(
        "model-is-a-directory",
        "evaluate",
        both(delete("model.keras"), lambda root: (root / "model.keras").mkdir()),
        ("model.keras: expected a trained model (run the train stage). Received: a directory",),
    ),
    Case(
        "model-with-a-lambda-layer",
        "predict",
        save_lambda_model,
        (
            "model.keras: expected a .keras model archive. Received: a model holding Python code (a Lambda layer)",
            "safe mode",
        ),
    ),
    Case(
        "model-zip-bomb",
        "evaluate",
        add_to_model("assets/padding.bin", bytes(200_000_000)),
        (
            "model.keras:assets/padding.bin: expected a member that inflates to at most 100 times its compressed size",
            "declaring 200000000",
        ),
    ),
    Case(
        "model-member-outside-the-folder",
        "predict",
        add_to_model("/etc/cron.d/model", b"* * * * * root true\n"),
        ("model.keras: expected members named inside the archive. Received: a member named '/etc/cron.d/model'",),
    ),
    Case(
        "model-of-the-wrong-shape",
        "predict",
        save_wrong_shape_model,
        ("model.keras: expected a model from (n, 28, 28, 1) to (n, 10). Received: (None, 32, 32, 1)",),
    ),
]


INPUTS = {
    "data/raw": "raw",
    "data/prepared": "prepared",
    "models/model.keras": "model.keras",
    "metrics/training": "training",
}


def stage_argv(stage: str, root: Path) -> list[str]:
    """The stage's command line from dvc.yaml, reading the inputs under `root` and writing under `root / "out"`."""
    words = shlex.split(yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"][stage]["cmd"])[3:]
    argv = []
    for flag, value in zip(words[::2], words[1::2], strict=True):
        if flag == "--params":
            argv += [flag, str(root / "params.yaml")]
        elif value in INPUTS:
            argv += [flag, str(root / INPUTS[value])]
        else:
            argv += [flag, str(root / "out" / value)]
    return argv


@pytest.fixture(scope="module")
def valid_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Valid inputs for every stage: params, an idx folder, Kaggle CSVs, raw IDX files, prepared arrays, a model."""
    root = tmp_path_factory.mktemp("valid")
    document = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    document["fetch"]["local_path"] = EXTERNAL  # relative: each test runs in its own copy of this folder
    document["predict"]["images"] = "own"
    # An untrained model's near-ties move when quantised: only a broken conversion should fail export here.
    document["export"]["max_int8_accuracy_change"] = 1.0
    (root / "params.yaml").write_text(yaml.safe_dump(document))
    images, labels = synthetic_digits(per_class=6, seed=0)
    test_images, test_labels = synthetic_digits(per_class=1, seed=1)
    splits = MnistSplits(images, labels, test_images, test_labels, test_images)
    write_raw(splits, root / "raw")
    (root / EXTERNAL).mkdir()
    for name in idx.RAW_FILE_NAMES[:4]:
        (root / EXTERNAL / name).write_bytes((root / "raw" / name).read_bytes())
    (root / "own").mkdir()
    for position in range(3):
        Image.fromarray(255 - np.kron(test_images[position], np.ones((4, 4), np.uint8))).save(
            root / "own" / f"{position}.png"
        )
    (root / "kaggle").mkdir()
    (root / TRAIN_CSV).write_bytes(kaggle_csv(images, labels))
    (root / TEST_CSV).write_bytes(kaggle_csv(test_images, None))
    checked = check_labelled_images(images, labels, "synthetic")
    test = check_labelled_images(test_images, test_labels, "synthetic")
    write_prepared(prepare_splits(checked, test, PreprocessParams(0.25, 0)), test.images, root / "prepared")
    from mnist_dvc.model.architectures import Augmentation, build_compact_model, configure_tensorflow
    from mnist_dvc.model.files import save_model
    from mnist_dvc.params.compute import ComputeParams

    configure_tensorflow(0, ComputeParams(portable_kernels=True, threads=0))
    save_model(build_compact_model(Augmentation(0.0, 0.0, 0.0), 0), root / "model.keras")
    for curve in CURVES.values():  # train's logged curves, two epochs, which evaluate draws
        path = root / "training/plots/metrics" / f"{curve}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"step\t{Path(curve).name}\n0\t0.5\n1\t0.25\n")
    return root


def test_the_valid_inputs_pass_every_stage_but_train(
    valid_inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The baseline the cases break is itself accepted: each failure below is the one thing broken."""
    import shutil

    shutil.copytree(valid_inputs, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    for breaks in (idx_source, kaggle_source):
        breaks(tmp_path)
        assert importlib.import_module("stages.fetch").main(stage_argv("fetch", tmp_path)) == 0, breaks
    for stage in ("preprocess", "evaluate", "predict", "export"):
        assert importlib.import_module(f"stages.{stage}").main(stage_argv(stage, tmp_path)) == 0, stage


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_clearly_and_writes_nothing(
    case: Case, valid_inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    shutil.copytree(valid_inputs, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)  # relative paths in params (fetch.local_path) resolve here, as under `dvc repro`
    monkeypatch.setattr(shutil, "which", lambda _name: None)  # no kaggle client: the error must say so
    case.breaks(tmp_path)
    main = importlib.import_module(f"stages.{case.stage}").main
    status = main(stage_argv(case.stage, tmp_path))
    stderr = capsys.readouterr().err
    assert status == 1
    # One error, last: the line starting `error: ` (with, for the url source, the list of mirror answers).
    assert stderr.count("error: ") == 1 and (stderr.startswith("error: ") or "\nerror: " in stderr), stderr
    message = stderr[stderr.index("error: ") :]
    for fragment in case.expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "Received" in message or "Expected one of" in message or "missing key" in message
    written = [path for path in (tmp_path / "out").rglob("*") if path.is_file()] if (tmp_path / "out").exists() else []
    assert written == [], f"{case.id} left {written}"


def test_the_suite_covers_every_stage_and_kind() -> None:
    assert {case.stage for case in CASES} == set(ALL_STAGES)
    kinds = {case.id.split("-")[0] for case in CASES}
    assert {"idx", "raw", "csv", "kaggle", "url", "params", "prepared", "model"} <= kinds


UNREADABLE = [  # (file made unreadable, stage, where the stage reads it from, the error line's start)
    ("params.yaml", "preprocess", None, "params.yaml: expected a params file. Received: a file that cannot be read"),
    (
        f"raw/{idx.TRAIN_LABELS}",
        "preprocess",
        None,
        f"raw/{idx.TRAIN_LABELS}: expected an IDX file. Received: a file that cannot be read",
    ),
    (TRAIN_IDX, "fetch", idx_source, f"{TRAIN_IDX}: expected an IDX file. Received: a file that cannot be read"),
    (TEST_CSV, "fetch", kaggle_source, f"{TEST_CSV}: expected a Kaggle CSV file. Received: a file that cannot be read"),
]


def _without_read_override() -> None:
    """In the child, before exec: drop the capabilities that let root read any file (CAP_DAC_OVERRIDE = 1,
    CAP_DAC_READ_SEARCH = 2) from the bounding set (prctl PR_CAPBSET_DROP = 24), so root meets permissions."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.parametrize(("relative", "stage", "setup", "expected"), UNREADABLE, ids=[case[0] for case in UNREADABLE])
def test_a_file_without_read_permission_is_named(
    relative: str, stage: str, setup: Breaker | None, expected: str, valid_inputs: Path, tmp_path: Path
) -> None:
    """A real permission denial, in a real stage process (as root, one without the power to read any file)."""
    import shutil
    import subprocess
    import sys

    shutil.copytree(valid_inputs, tmp_path, dirs_exist_ok=True)
    if setup is not None:
        setup(tmp_path)
    (tmp_path / relative).chmod(0)
    argv = [sys.executable, "-m", f"stages.{stage}", *stage_argv(stage, tmp_path)]
    try:
        result = subprocess.run(
            argv,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            preexec_fn=_without_read_override if os.geteuid() == 0 else None,
        )
    except subprocess.SubprocessError as error:  # prctl refused: a container without CAP_SETPCAP
        pytest.skip(f"root cannot give up reading every file here ({error}), so no read can be denied")
    assert result.returncode == 1, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"{expected} (no permission to read it)" in error_lines[0], error_lines
    assert not (tmp_path / "out").exists() or [path for path in (tmp_path / "out").rglob("*") if path.is_file()] == []


@pytest.fixture
def small_file_system(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], None] | None]]:
    """A folder with room for 32 KiB: a tmpfs mounted for the test where this machine allows (root), else a
    plain folder and a limit on the size of any file the stage writes (RLIMIT_FSIZE: the kernel then
    refuses writes past 32 KiB with EFBIG, another real write failure)."""
    import resource
    import signal
    import subprocess

    folder = tmp_path / "small"
    folder.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(folder)], capture_output=True, check=False
        ).returncode
        == 0
    )

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, 32 * 1024))

    try:
        yield folder, None if mounted else limit_file_size
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_is_a_clear_error_and_leaves_nothing_half_written(
    valid_inputs: Path, tmp_path: Path, small_file_system: tuple[Path, Callable[[], None] | None]
) -> None:
    """preprocess writes about 60 KB of arrays into a folder with room for 32 KiB."""
    import shutil
    import subprocess
    import sys

    folder, limit = small_file_system
    shutil.copytree(valid_inputs, tmp_path / "inputs")
    argv = stage_argv("preprocess", tmp_path / "inputs")
    argv[argv.index("--out-dir") + 1] = str(folder / "prepared")
    result = subprocess.run(
        [sys.executable, "-m", "stages.preprocess", *argv],
        cwd=tmp_path / "inputs",
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=limit,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    # numpy's short write says how many bytes it wrote, not why; the message adds the room left.
    assert error.startswith(f"error: {folder}/prepared: expected to write it. Received: "), error
    assert (
        re.search(
            r"(No space left on device \(errno 28\)|\d+ requested and \d+ written), \d+ bytes free there; "
            r"nothing of it was left half-written$",
            error,
        )
        if limit is None
        else re.search(r"(File too large \(errno 27\)|\d+ requested and \d+ written)", error)
    ), error
    assert list(folder.rglob("*")) == []
