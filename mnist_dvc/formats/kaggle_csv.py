"""Reading Kaggle's digit-recognizer CSVs: `train.csv` (`label,pixel0..pixel783`) and `test.csv` (`pixel0..pixel783`).

Every row is checked, and the first problem is reported with its line (1 = the header) and column:
a file that is empty or not text, a missing or renamed header, a row with too many or too few cells,
an empty cell, anything that is not an integer, pixels outside 0-255 and labels outside 0-9.
The structure is checked line by line first, so that the numeric parse (pandas' C parser, about a
second for Kaggle's 42,000 rows) never has to guess what a ragged row meant.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable

import numpy as np
import pandas as pd

from mnist_dvc.digit_arrays import IMAGE_SIDE
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
    values, quote = _checked_integers(payload, _read_cells(payload), expected_columns, source)
    if labelled:
        labels = _checked_range(values[:, :1], quote, expected_columns, 0, 9, "a label", source, column_offset=0)[:, 0]
        pixels = values[:, 1:]
    else:
        labels = None
        pixels = values
    _checked_range(pixels, quote, expected_columns, 0, 255, "a pixel value", source, column_offset=1 if labelled else 0)
    images = pixels.astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    return KaggleImages(images, None if labels is None else labels.astype(np.uint8))


def _text_lines(payload: bytes, source: str) -> list[str]:
    """The file's lines as text, without the final newline; refuses empty, binary and gappy files."""
    if not payload.strip():
        raise PipelineError(f"{source}: expected a CSV file with a header line. Received: an empty file")
    if b"\x00" in payload:
        raise PipelineError(f"{source}: expected a text CSV file. Received: binary data (NUL bytes)")
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise PipelineError(
            f"{source}: expected a UTF-8 text CSV file. Received: bytes that are not text "
            f"(0x{payload[error.start]:02x} at byte {error.start})"
        ) from None
    # Lines end at \n (or \r\n); not at the other characters str.splitlines() breaks on (\x0c, \x1e, \u2028...),
    # which pandas would read as part of a cell.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:  # only characters Python counts as blank (\x1c, \u2028...), which bytes.strip() keeps
        raise PipelineError(f"{source}: expected a CSV file with a header line. Received: only blank characters")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise PipelineError(
                f"{source} line {number}: expected a row of comma-separated values. Received: an empty line"
            )
        if "\r" in line:
            raise PipelineError(
                f"{source} line {number}: expected lines that end with \\n or \\r\\n. Received: a "
                f"carriage return inside the line, at character {line.index(chr(13)) + 1}"
            )
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


# pandas' C parser splits fields at every comma (no quoting, so that it sees the cells the structure check
# counted) and lines at \n, \r\n or a lone \r (refused before it gets here).
_CSV_OPTIONS = {
    "header": 0,
    "keep_default_na": False,
    "na_values": [""],
    "engine": "c",
    "encoding": "utf-8-sig",
    "quoting": csv.QUOTE_NONE,
}
# What a cell may hold: a decimal integer, optionally signed, optionally in double quotes, with spaces or
# tabs around (or form feeds and vertical tabs: what the C parser skips around an integer). Not 1e2, 5.0,
# TRUE or inf, which pandas would otherwise turn into numbers.
_INTEGER_CELL = r'[ \t\f\v]*(?:[+-]?[0-9]+|"[ \t\f\v]*[+-]?[0-9]+[ \t\f\v]*")[ \t\f\v]*'


def _read_cells(payload: bytes, as_text: bool = False, columns: list[int] | None = None) -> pd.DataFrame:
    """The data rows (of the `columns` given by position, or all) as a DataFrame of whatever pandas makes of
    each column, or (`as_text`) of their text."""
    # `na_values=[""]` only: an empty cell becomes NaN (reported as empty), while the text "NaN" stays
    # text (reported as not an integer).
    return pd.read_csv(
        io.BytesIO(payload),
        dtype=str if as_text else None,
        usecols=columns,
        **_CSV_OPTIONS,
    )


# Any integer beyond this is outside every range checked here. Larger ones (pandas reads up to 2**64 - 1 as
# uint64, longer ones as text) are clipped to it, so that converting to int64 cannot wrap a huge pixel
# value round to -1; errors quote the cell as it is written, never the clipped number.
_CLIP = 2**62


Quote = Callable[[int, int], object]


def _checked_integers(
    payload: bytes, table: pd.DataFrame, columns: tuple[str, ...], source: str
) -> tuple[np.ndarray, Quote]:
    """The table as int64 (n, columns), and a function giving the cell at (row, column) as written, for
    errors; the first cell that is empty or not an integer is reported."""
    suspects = [index for index, dtype in enumerate(table.dtypes) if not pd.api.types.is_signed_integer_dtype(dtype)]
    if not suspects:  # the usual case: the C parser read every cell as an int64
        return table.to_numpy(dtype=np.int64), _quote_from(table, [], table)
    # Only the columns pandas did not read as integers are read again, as text, and checked cell by cell.
    text = _read_cells(payload, as_text=True, columns=suspects)
    integer = text.apply(lambda column: column.str.fullmatch(_INTEGER_CELL).fillna(False).astype(bool)).to_numpy(bool)
    if not integer.all():
        row, position = _first(~integer)
        cell = text.iat[row, position]
        column = suspects[position]
        what = "an empty cell" if _is_empty(cell) else repr(str(cell))
        raise PipelineError(
            f"{source} line {row + 2}, column {column + 1} ({columns[column]}): expected an integer. Received: {what}"
        )
    digits = text.apply(
        lambda column: pd.to_numeric(column.str.replace(r'[ \t\f\v"]', "", regex=True), errors="coerce")
    )
    values = np.empty(table.shape, dtype=np.int64)
    others = [index for index in range(table.shape[1]) if index not in set(suspects)]
    values[:, others] = table.iloc[:, others].to_numpy(dtype=np.int64)
    values[:, suspects] = np.clip(digits.to_numpy(dtype=np.float64), -_CLIP, _CLIP).astype(np.int64)
    return values, _quote_from(table, suspects, text)


def _quote_from(table: pd.DataFrame, suspects: list[int], text: pd.DataFrame) -> Quote:
    positions = {column: position for position, column in enumerate(suspects)}

    def quote(row: int, column: int) -> object:
        return text.iat[row, positions[column]] if column in positions else table.iat[row, column]

    return quote


def _checked_range(
    values: np.ndarray,
    quote: Quote,
    columns: tuple[str, ...],
    low: int,
    high: int,
    what: str,
    source: str,
    column_offset: int,
) -> np.ndarray:
    """`values` (n, k) int64, the file's columns from `column_offset` on (named `columns`); the first one outside
    [low, high] is refused, quoting the cell as written."""
    outside = (values < low) | (values > high)
    if outside.any():
        row, column = _first(outside)
        position = column + column_offset
        raise PipelineError(
            f"{source} line {row + 2}, column {position + 1} ({columns[position]}): "
            f"expected {what} from {low} to {high}. Received: {quote(row, position)}"
        )
    return values


def _first(mask: np.ndarray) -> tuple[int, int]:
    """(row, column) of the first True in row-major order, i.e. the first one a reader meets."""
    row, column = divmod(int(np.argmax(mask.reshape(-1))), int(mask.shape[1]))
    return row, column


def _is_empty(cell: object) -> bool:
    return cell is None or (isinstance(cell, float) and np.isnan(cell)) or (isinstance(cell, str) and not cell.strip())


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
