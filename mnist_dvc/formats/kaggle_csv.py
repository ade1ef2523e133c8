"""Reading Kaggle's digit-recognizer CSVs: `train.csv` (`label,pixel0..pixel783`) and `test.csv` (`pixel0..pixel783`).

Every row is checked, and the first problem is reported with its line (1 = the header) and column:
a file that is empty or not text, a missing or renamed header, a row with too many or too few cells,
an empty cell, anything that is not an integer, pixels outside 0-255 and labels outside 0-9.
The structure is checked line by line first, so that the numeric parse (pandas' C parser, about a
second for Kaggle's 42,000 rows) never has to guess what a ragged row meant.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pandas as pd

from mnist_dvc.digits import IMAGE_SIDE
from mnist_dvc.errors import PipelineError

PIXEL_COLUMNS = tuple(f"pixel{index}" for index in range(IMAGE_SIDE * IMAGE_SIDE))
LABEL_COLUMN = "label"
TRAIN_COLUMNS = (LABEL_COLUMN, *PIXEL_COLUMNS)
TEST_COLUMNS = PIXEL_COLUMNS


@dataclasses.dataclass(frozen=True)
class KaggleImages:
    """images: uint8 (n, 28, 28); labels: uint8 (n,), or None for the unlabelled test.csv."""

    images: np.ndarray
    labels: np.ndarray | None


def parse_kaggle_csv(payload: bytes, source: str, labelled: bool) -> KaggleImages:
    """Parse and check the bytes of train.csv (`labelled`) or test.csv; `source` names the file in errors."""
    expected_columns = TRAIN_COLUMNS if labelled else TEST_COLUMNS
    lines = _text_lines(payload, source)
    _check_header(lines[0], expected_columns, source)
    if len(lines) == 1:
        raise PipelineError(f"{source}: expected at least one data row after the header. Received: none")
    _check_row_lengths(lines, len(expected_columns), source)
    values = _checked_integers(_read_cells(payload), expected_columns, source)
    if labelled:
        labels = _checked_range(values[:, 0], 0, 9, LABEL_COLUMN, "a label", source, column_offset=0)
        pixels = values[:, 1:]
    else:
        labels = None
        pixels = values
    _checked_range(pixels, 0, 255, None, "a pixel value", source, column_offset=1 if labelled else 0)
    images = pixels.astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    return KaggleImages(images, None if labels is None else labels.astype(np.uint8))


def _text_lines(payload: bytes, source: str) -> list[str]:
    """The file's lines as text, without the final newline; refuses empty, binary and gappy files."""
    if not payload.strip():
        raise PipelineError(f"{source}: expected a CSV file with a header line. Received: an empty file")
    if b"\x00" in payload[:4096]:
        raise PipelineError(f"{source}: expected a text CSV file. Received: binary data (NUL bytes)")
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise PipelineError(
            f"{source}: expected a UTF-8 text CSV file. Received: bytes that are not text "
            f"(0x{payload[error.start]:02x} at byte {error.start})"
        ) from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise PipelineError(f"{source} line {number}: expected a row of comma-separated values. Received: an empty line")
    return lines


def _check_header(header: str, expected_columns: tuple[str, ...], source: str) -> None:
    received = [name.strip().strip('"') for name in header.split(",")]
    expected_text = f"{expected_columns[0]},{expected_columns[1]},...,{expected_columns[-1]}"
    if len(received) != len(expected_columns):
        raise PipelineError(
            f"{source} line 1: expected the header {expected_text} ({len(expected_columns)} columns). "
            f"Received: {len(received)} columns starting {_preview(header)}"
        )
    for position, (want, got) in enumerate(zip(expected_columns, received, strict=True), start=1):
        if want != got:
            hint = " (a number: is the header line missing?)" if got.lstrip("-").isdigit() else ""
            raise PipelineError(
                f"{source} line 1, column {position}: expected the header {expected_text}, "
                f"so column {position} named '{want}'. Received: {got!r}{hint}"
            )


def _check_row_lengths(lines: list[str], column_count: int, source: str) -> None:
    separators = column_count - 1
    for number, line in enumerate(lines[1:], start=2):
        found = line.count(",")
        if found != separators:
            raise PipelineError(
                f"{source} line {number}: expected {column_count} comma-separated values. Received: {found + 1}"
            )


def _read_cells(payload: bytes) -> pd.DataFrame:
    """The data rows as a DataFrame of whatever pandas makes of each column (checked afterwards)."""
    # `na_values=[""]` only: an empty cell becomes NaN (reported as empty), while the text "NaN"
    # stays text (reported as not an integer). The structure was checked already, so the bytes can
    # go to the C parser as they are.
    return pd.read_csv(io.BytesIO(payload), header=0, keep_default_na=False, na_values=[""], engine="c",
                       encoding="utf-8-sig")


def _checked_integers(table: pd.DataFrame, columns: tuple[str, ...], source: str) -> np.ndarray:
    """The table as int64 (n, columns); the first empty, non-numeric or fractional cell is reported."""
    if all(pd.api.types.is_integer_dtype(dtype) for dtype in table.dtypes):
        return table.to_numpy(dtype=np.int64)  # the usual case: the C parser read every cell as an integer
    numeric = table.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(numeric) | (numeric != np.floor(numeric))
    if bad.any():
        row, column = _first(bad)
        cell = table.iat[row, column]
        what = "an empty cell" if _is_empty(cell) else repr(str(cell))
        raise PipelineError(
            f"{source} line {row + 2}, column {column + 1} ({columns[column]}): expected an integer. Received: {what}"
        )
    return numeric.astype(np.int64)


def _checked_range(values: np.ndarray, low: int, high: int, column_name: str | None, what: str, source: str,
                   column_offset: int) -> np.ndarray:
    """`values` (1-D or 2-D int64), refusing the first one outside [low, high]."""
    outside = (values < low) | (values > high)
    if outside.any():
        grid = outside.reshape(len(values), -1)
        row, column = _first(grid)
        name = column_name or PIXEL_COLUMNS[column]
        received = values.reshape(len(values), -1)[row, column]
        raise PipelineError(
            f"{source} line {row + 2}, column {column + 1 + column_offset} ({name}): "
            f"expected {what} from {low} to {high}. Received: {received}"
        )
    return values


def _first(mask: np.ndarray) -> tuple[int, int]:
    """(row, column) of the first True in row-major order, i.e. the first one a reader meets."""
    flat = int(np.argmax(mask.reshape(-1)))
    return divmod(flat, mask.shape[1])


def _is_empty(cell: object) -> bool:
    return cell is None or (isinstance(cell, float) and np.isnan(cell)) or (isinstance(cell, str) and not cell.strip())


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
