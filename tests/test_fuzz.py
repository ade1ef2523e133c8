"""Property-based fuzzing of every reader a user's input goes through (Hypothesis).

Each property feeds a reader valid inputs, damaged ones (bytes flipped, cut, inserted; one cell, key or
header field replaced) and arbitrary bytes, and asserts the one rule of the project: the reader returns
the right data or raises `PipelineError` (whose message names the input), never any other exception,
and, where the reader inflates or allocates from what a header declares, within a memory bound
(measured with tracemalloc, which sees Python's and numpy's allocations).

`make test` runs the "ci" profile: a fixed, small number of examples per property (derandomized, so a CI
run is reproducible). `make fuzz` runs the "fuzz" profile: many more, random examples, with statistics.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import struct
import tempfile
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from mnist_dvc.errors import ParamsError, PipelineError
from mnist_dvc.formats import idx
from mnist_dvc.formats.kaggle_csv import PIXEL_COLUMNS, parse_kaggle_csv
from mnist_dvc.formats.prepared_arrays import read_prepared
from mnist_dvc.formats.training_log import read_curve
from mnist_dvc.own_digits.reading import ImageError, load_image, read_grayscale
from mnist_dvc.params.loading import parse_section, read_params_file
from mnist_dvc.sources.kaggle import read_kaggle_files
from tests.conftest import PROJECT_ROOT, synthetic_digits

T = TypeVar("T")


def slow_property(share: int) -> settings:
    """This profile's settings with 1/`share` of its examples, for a property whose example takes a while."""
    return settings(max_examples=max(5, settings.default.max_examples // share))


@contextlib.contextmanager
def memory_bound(limit_bytes: int) -> Iterator[None]:
    """Fail if the block's peak of traced allocations exceeds `limit_bytes`, whether the block returned or
    raised: a refused bomb raises, and its allocation before the refusal is what the bound is for (the bound's
    failure then replaces the reader's error, which stays attached as its context)."""
    tracemalloc.start()
    try:
        yield
    finally:
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if peak > limit_bytes:
            raise AssertionError(f"peak {peak} bytes > bound {limit_bytes}")


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    """A fresh folder per example (Hypothesis runs many examples in one test, so tmp_path cannot serve)."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        yield Path(folder)


def read_or_refused(payload: bytes, name: str, reader: Callable[[Path], T]) -> T | None:
    """`reader` applied to `payload` saved as `name` in a scratch folder: its result, or None when it raised the
    project's error naming that file (any other exception propagates: the property fails)."""
    with scratch_folder() as folder:
        path = folder / name
        path.write_bytes(payload)
        try:
            return reader(path)
        except PipelineError as error:
            assert str(path) in str(error), str(error)
            return None


# --- damaging bytes ---------------------------------------------------------------------------------


@st.composite
def damaged(draw: st.DrawFn, valid: bytes) -> bytes:
    """`valid` with one to four edits: a byte changed, a range cut out, bytes inserted, or the end cut."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[position : position + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[position:]
    return bytes(data)


# --- IDX files, plain and gzip'd ------------------------------------------------------------------


def idx_from_bytes(payload: bytes, ndim: int) -> np.ndarray:
    """What read_idx does with a file's bytes."""
    if payload[:2] == b"\x1f\x8b":
        payload = idx.gunzip_idx(payload, "fuzz.idx", ndim)
    return idx.decode_idx(payload, "fuzz.idx", ndim)


idx_arrays = st.one_of(
    st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)),
    st.tuples(st.integers(0, 40)),
).flatmap(
    lambda shape: st.binary(min_size=int(np.prod(shape)), max_size=int(np.prod(shape))).map(
        lambda body: np.frombuffer(body, np.uint8).reshape(shape)
    )
)


@given(array=idx_arrays, compress=st.booleans())
def test_idx_files_round_trip(array: np.ndarray, compress: bool) -> None:
    payload = idx.encode_idx(array)
    payload = gzip.compress(payload, mtime=0) if compress else payload
    np.testing.assert_array_equal(idx_from_bytes(payload, array.ndim), array)


@given(data=st.data(), array=idx_arrays, compress=st.booleans())
def test_damaged_idx_files_give_the_data_or_a_pipeline_error(
    data: st.DataObject, array: np.ndarray, compress: bool
) -> None:
    valid = idx.encode_idx(array)
    payload = data.draw(damaged(gzip.compress(valid, mtime=0) if compress else valid))
    try:
        with memory_bound(4 * len(valid) + 1_000_000):
            decoded = idx_from_bytes(payload, array.ndim)
    except PipelineError as error:
        assert "fuzz.idx" in str(error)
        return
    # Accepted: then it is exactly what the (possibly damaged) header and body say.
    plain = gzip.decompress(payload) if payload[:2] == b"\x1f\x8b" else payload
    header = 4 + 4 * array.ndim
    assert decoded.shape == struct.unpack(f">{array.ndim}I", plain[4:header])
    assert decoded.tobytes() == plain[header:]


@given(
    shape=st.tuples(st.integers(1, 50), st.integers(1, 28), st.integers(1, 28)),
    extra=st.integers(-1000, 20_000_000),
    level=st.sampled_from([1, 9]),
)
def test_gzip_idx_files_inflate_no_further_than_their_header_declares(
    shape: tuple[int, int, int], extra: int, level: int
) -> None:
    """A body longer than the header declares (up to 20 MB of zeros, a bomb) is refused with memory bounded by
    the declared size, not the inflated one."""
    declared = 16 + int(np.prod(shape))
    body = bytes(max(declared - 16 + extra, 0))
    payload = gzip.compress(struct.pack(">BBBB3I", 0, 0, 8, 3, *shape) + body, compresslevel=level, mtime=0)
    try:
        with memory_bound(4 * declared + len(payload) + 2_000_000):
            decoded = idx_from_bytes(payload, 3)
    except PipelineError as error:
        assert extra != 0 and "fuzz.idx" in str(error)
        return
    assert extra == 0 and decoded.shape == shape


@given(header=st.binary(min_size=0, max_size=40), body=st.binary(max_size=200), ndim=st.sampled_from([1, 3]))
def test_arbitrary_idx_headers_are_never_trusted(header: bytes, body: bytes, ndim: int) -> None:
    """Arbitrary headers (dimensions up to 2**32 - 1 each): never an allocation of what they declare."""
    try:
        with memory_bound(1_000_000):
            idx_from_bytes(header + body, ndim)
    except PipelineError:
        pass


# --- Kaggle CSVs ---------------------------------------------------------------------------------

TRAIN_HEADER = "label," + ",".join(PIXEL_COLUMNS)
_INTEGER = re.compile(r'[ \t\f\v]*(?:[+-]?[0-9]+|"[ \t\f\v]*[+-]?[0-9]+[ \t\f\v]*")[ \t\f\v]*')


def kaggle_rows(seed: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (rows, 28, 28), dtype=np.uint8), rng.integers(0, 10, rows, dtype=np.uint8)


def kaggle_text(images: np.ndarray, labels: np.ndarray, newline: str, bom: bool, final_newline: bool) -> str:
    rows = zip(images, labels, strict=True)
    lines = [TRAIN_HEADER] + [",".join(map(str, [label, *image.reshape(-1)])) for image, label in rows]
    return ("\ufeff" if bom else "") + newline.join(lines) + (newline if final_newline else "")


@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 6),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    final_newline=st.booleans(),
)
def test_kaggle_csvs_round_trip(seed: int, rows: int, newline: str, bom: bool, final_newline: bool) -> None:
    images, labels = kaggle_rows(seed, rows)
    parsed = parse_kaggle_csv(kaggle_text(images, labels, newline, bom, final_newline).encode(), "train.csv", True)
    np.testing.assert_array_equal(parsed.images, images)
    np.testing.assert_array_equal(parsed.labels, labels)


cell_texts = st.one_of(
    st.integers(-300, 600).map(str),
    st.integers(-(10**25), 10**25).map(str),
    st.sampled_from(
        [
            "",
            " ",
            "1e2",
            "5.0",
            "1.",
            "+3",
            "-0",
            "007",
            " 7",
            "7\t",
            '"9"',
            '"300"',
            "0x10",
            "NaN",
            "inf",
            "TRUE",
            "\u0663",
            "1_0",
            "'5'",
            "\x0c5",
            "18446744073709551615",
        ]
    ),
    st.text(alphabet=st.characters(exclude_characters=",\n\r\x00"), max_size=6),
)


@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 4),
    row=st.integers(0, 3),
    column=st.integers(0, 784),
    text=cell_texts,
)
def test_one_replaced_cell_is_read_exactly_or_named(seed: int, rows: int, row: int, column: int, text: str) -> None:
    """The oracle: a cell holding a (quoted, padded) decimal integer in range is read as that number; anything
    else is an error naming that cell's line and column."""
    row = row % rows
    images, labels = kaggle_rows(seed, rows)
    table = np.concatenate([labels[:, None], images.reshape(rows, -1)], axis=1).astype(object)
    table[row, column] = text
    payload = (TRAIN_HEADER + "\n" + "\n".join(",".join(map(str, line)) for line in table) + "\n").encode()
    number = int(re.sub(r'[ \t\f\v"]', "", text)) if _INTEGER.fullmatch(text) else None
    in_range = number is not None and 0 <= number <= (9 if column == 0 else 255)
    try:
        parsed = parse_kaggle_csv(payload, "train.csv", labelled=True)
    except PipelineError as error:
        assert not in_range, f"{text!r} refused: {error}"
        assert f"train.csv line {row + 2}, column {column + 1} (" in str(error) or (
            text.strip(" \t\f\v") == "" and "line" in str(error)
        ), str(error)
        return
    assert in_range, f"{text!r} accepted"
    expected_images, expected_labels = images.copy(), labels.copy()
    if column == 0:
        expected_labels[row] = number
    else:
        expected_images.reshape(rows, -1)[row, column - 1] = number
    np.testing.assert_array_equal(parsed.images, expected_images)
    np.testing.assert_array_equal(parsed.labels, expected_labels)


@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_damaged_kaggle_csvs_give_the_data_or_a_pipeline_error(data: st.DataObject, seed: int) -> None:
    images, labels = kaggle_rows(seed, 3)
    payload = data.draw(damaged(kaggle_text(images, labels, "\n", False, True).encode()))
    try:
        with memory_bound(50 * len(payload) + 5_000_000):
            parsed = parse_kaggle_csv(payload, "train.csv", labelled=True)
    except PipelineError as error:
        assert str(error).startswith("train.csv")
        return
    assert parsed.images.dtype == np.uint8 and parsed.images.shape[1:] == (28, 28)
    assert parsed.labels is not None and parsed.labels.max(initial=0) <= 9


@given(payload=st.binary(max_size=3000), labelled=st.booleans())
def test_arbitrary_bytes_as_a_kaggle_csv_are_refused_cleanly(payload: bytes, labelled: bool) -> None:
    with contextlib.suppress(PipelineError):
        parse_kaggle_csv(payload, "test.csv", labelled=labelled)


# --- Kaggle's zip --------------------------------------------------------------------------------


def kaggle_zip_bytes(seed: int, method: int) -> bytes:
    images, labels = kaggle_rows(seed, 3)
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", compression=method) as archive:
        archive.writestr("train.csv", kaggle_text(images, labels, "\n", False, True))
        archive.writestr("test.csv", "\n".join([",".join(PIXEL_COLUMNS), ",".join(["0"] * 784)]) + "\n")
    return output.getvalue()


@given(
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]),
)
@slow_property(2)
def test_damaged_kaggle_zips_give_the_files_or_a_pipeline_error(data: st.DataObject, seed: int, method: int) -> None:
    payload = data.draw(damaged(kaggle_zip_bytes(seed, method)))
    with scratch_folder() as folder:
        path = folder / "digit-recognizer.zip"
        path.write_bytes(payload)
        try:
            with memory_bound(100 * len(payload) + 20_000_000):
                (train, _), (test, _) = read_kaggle_files(path)
        except PipelineError as error:
            assert str(path) in str(error)
            return
    # Accepted: zip's CRC-32 vouches for each member, so they are the CSVs written.
    images, labels = kaggle_rows(seed, 3)
    assert train == kaggle_text(images, labels, "\n", False, True).encode()
    assert test.startswith(b"pixel0,")


# --- params.yaml ---------------------------------------------------------------------------------


def stage_schemas() -> dict[str, type]:
    from mnist_dvc.params.evaluate import EvaluateParams
    from mnist_dvc.params.fetch import FetchParams
    from mnist_dvc.params.predict import PredictParams
    from mnist_dvc.params.preprocess import PreprocessParams
    from mnist_dvc.params.train import TrainParams

    return {
        "fetch": FetchParams,
        "preprocess": PreprocessParams,
        "train": TrainParams,
        "evaluate": EvaluateParams,
        "predict": PredictParams,
    }


DEFAULT_PARAMS = (PROJECT_ROOT / "params.yaml").read_text()
yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=12)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


@given(data=st.data(), value=yaml_values)
def test_any_value_for_any_key_gives_valid_params_or_a_params_error(data: st.DataObject, value: object) -> None:
    document = yaml.safe_load(DEFAULT_PARAMS)
    section = data.draw(st.sampled_from(sorted(stage_schemas())))
    key = data.draw(st.sampled_from(sorted(document[section]) + ["unknown_key"]))
    document[section][key] = value
    with scratch_folder() as folder:
        path = folder / "params.yaml"
        path.write_text(yaml.safe_dump(document))
        try:
            parse_section(read_params_file(path), section, stage_schemas()[section], str(path))
        except ParamsError as error:
            assert str(error).startswith(str(path))


@given(data=st.data())
def test_damaged_params_files_give_params_or_a_params_error(data: st.DataObject) -> None:
    payload = data.draw(
        st.one_of(damaged(DEFAULT_PARAMS.encode()), st.binary(max_size=400), st.text(max_size=200).map(str.encode))
    )
    with scratch_folder() as folder:
        path = folder / "params.yaml"
        path.write_bytes(payload)
        try:
            document = read_params_file(path)
            for section, schema in stage_schemas().items():
                parse_section(document, section, schema, str(path))
        except ParamsError as error:
            assert str(error).startswith(str(path))


# --- prepared arrays and training curves ---------------------------------------------------------


def prepared_folder(folder: Path, images: bytes, labels: bytes) -> Path:
    (folder / "val_images.npy").write_bytes(images)
    (folder / "val_labels.npy").write_bytes(labels)
    return folder


def npy_bytes(array: np.ndarray) -> bytes:
    output = io.BytesIO()
    np.save(output, array, allow_pickle=False)
    return output.getvalue()


@given(data=st.data(), seed=st.integers(0, 2**32 - 1), which=st.sampled_from(["images", "labels"]))
def test_damaged_prepared_arrays_give_the_arrays_or_a_pipeline_error(
    data: st.DataObject, seed: int, which: str
) -> None:
    images, labels = synthetic_digits(per_class=1, seed=seed % 1000)
    files = {"images": npy_bytes(images[..., None]), "labels": npy_bytes(labels)}
    files[which] = data.draw(damaged(files[which]))
    with scratch_folder() as folder:
        try:
            with memory_bound(10 * len(files["images"]) + 2_000_000):
                split = read_prepared(prepared_folder(folder, files["images"], files["labels"]), "val")
        except PipelineError as error:
            assert str(folder) in str(error)
            return
    assert split.images.dtype == np.uint8 and split.images.shape[1:] == (28, 28, 1)
    assert len(split.labels) == len(split.images) and split.labels.max(initial=0) <= 9


@given(data=st.data())
def test_damaged_training_curves_give_a_curve_or_a_pipeline_error(data: st.DataObject) -> None:
    valid = b"step\tloss\n0\t0.5\n1\t0.25\n2\t0.125\n"
    values = read_or_refused(data.draw(st.one_of(damaged(valid), st.binary(max_size=100))), "loss.tsv", read_curve)
    assert values is None or (values and all(isinstance(value, float) for value in values))


# --- images ------------------------------------------------------------------------------------

IMAGE_FORMATS = {
    "PNG": ("L", "LA", "P", "RGB", "RGBA", "I;16", "1"),
    "JPEG": ("L", "RGB", "CMYK"),
    "BMP": ("L", "P", "RGB", "1"),
    "GIF": ("L", "P"),
    "TIFF": ("L", "RGB", "CMYK", "I;16", "I", "F", "1"),
    "WEBP": ("RGB", "RGBA"),
}


@st.composite
def image_files(draw: st.DrawFn) -> tuple[bytes, str]:
    """An image of a random size, format and mode, with random pixels and a bright bar (so there is ink)."""
    image_format = draw(st.sampled_from(sorted(IMAGE_FORMATS)))
    mode = draw(st.sampled_from(IMAGE_FORMATS[image_format]))
    width, height = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    grey = rng.integers(0, 60, (height, width), dtype=np.uint8)
    grey[height // 4 : 3 * height // 4 + 1, width // 2 : width // 2 + 2] = 255
    image = Image.fromarray(grey, "L")
    if mode == "I;16":
        image = Image.fromarray(grey.astype(np.uint16) * 257)
    elif mode == "I":
        image = Image.fromarray(grey.astype(np.int32) * 1000)
    elif mode == "F":
        image = Image.fromarray(grey.astype(np.float32) / 255)
    elif mode != "L":
        image = image.convert(mode)
    output = io.BytesIO()
    image.save(output, format=image_format)
    return output.getvalue(), image_format.lower()


@given(data=st.data(), image=image_files())
@slow_property(2)
def test_any_image_file_gives_a_digit_or_an_image_error(data: st.DataObject, image: tuple[bytes, str]) -> None:
    valid, suffix = image
    payload = data.draw(st.one_of(st.just(valid), damaged(valid)))
    with scratch_folder() as folder:
        path = folder / f"digit.{suffix}"
        path.write_bytes(payload)
        loaded = load_image(path)  # records a problem rather than raising: the command goes on
        if loaded.pixels is None:
            assert loaded.error is not None and str(path) in loaded.error
        else:
            assert loaded.pixels.shape == (28, 28) and loaded.pixels.dtype == np.uint8
        if payload == valid:  # an undamaged file always reads, at its own size
            with Image.open(io.BytesIO(valid)) as opened:
                assert read_grayscale(path).shape == (opened.height, opened.width)


@given(payload=st.binary(max_size=600), suffix=st.sampled_from(["png", "jpg", "gif", "bmp", "tif", "webp"]))
def test_arbitrary_bytes_as_an_image_are_an_image_error(payload: bytes, suffix: str) -> None:
    with scratch_folder() as folder:
        path = folder / f"digit.{suffix}"
        path.write_bytes(payload)
        with contextlib.suppress(ImageError):
            read_grayscale(path)


# --- model archives ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from mnist_dvc.model.architectures import Augmentation, build_compact_model
    from mnist_dvc.model.files import save_model

    path = tmp_path_factory.mktemp("model") / "model.keras"
    save_model(build_compact_model(Augmentation(0.0, 0.0, 0.0), 0), path)
    return path.read_bytes()


@given(data=st.data())
@slow_property(4)
def test_damaged_model_archives_load_or_give_a_pipeline_error(data: st.DataObject, model_archive: bytes) -> None:
    from mnist_dvc.model.files import load_model

    model = read_or_refused(data.draw(damaged(model_archive)), "model.keras", load_model)
    assert model is None or model.output_shape == (None, 10)


@given(data=st.data(), ratio=st.integers(50, 2000))
@slow_property(4)
def test_model_archive_members_are_inflated_within_bounds(
    data: st.DataObject, ratio: int, model_archive: bytes
) -> None:
    """A member added to a real model that inflates `ratio` times (a bomb above 100): refused before Keras reads it."""
    from mnist_dvc.archives import MAX_INFLATION_RATIO, SMALL_MEMBER_BYTES
    from mnist_dvc.model.files import load_model

    compressed_target = data.draw(st.integers(20_000, 200_000))
    inflated = bytes(compressed_target * ratio)
    assume(len(inflated) <= 300_000_000)
    with scratch_folder() as folder:
        path = folder / "model.keras"
        path.write_bytes(model_archive)
        with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("assets/extra.bin", inflated)
        del inflated
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("assets/extra.bin")
        bomb = info.file_size > max(MAX_INFLATION_RATIO * info.compress_size, SMALL_MEMBER_BYTES)
        try:
            with memory_bound(SMALL_MEMBER_BYTES + 50_000_000) if bomb else contextlib.nullcontext():
                load_model(path)
        except PipelineError as error:
            assert bomb and "a zip bomb?" in str(error), str(error)
            return
        assert not bomb


def test_deflate_bombs_reach_the_ratio_the_bound_refuses() -> None:
    """The bomb property is meaningful: zeros deflate far beyond the allowed ratio."""
    from mnist_dvc.archives import MAX_INFLATION_RATIO

    assert len(bytes(10_000_000)) / len(zlib.compress(bytes(10_000_000), 9)) > 5 * MAX_INFLATION_RATIO


@pytest.mark.parametrize("then_raise", [False, True], ids=["returns", "raises"])
def test_the_memory_bound_fails_an_allocation_past_it(then_raise: bool) -> None:
    """The bound is checked on both paths: a block that allocates 10 MB against a 1 KB bound fails, also when
    it then raises the project's error (as every refused bomb does)."""

    def allocate_then_maybe_refuse() -> None:
        block = np.ones(10_000_000, dtype=np.uint8)
        if then_raise:
            raise PipelineError(f"fuzz.idx: refused after allocating {block.nbytes} bytes")

    with pytest.raises(AssertionError, match=r"bytes > bound 1000"):
        with memory_bound(1_000):
            allocate_then_maybe_refuse()
