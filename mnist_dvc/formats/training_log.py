"""The training curves that train logs with dvclive (`metrics/training/`), read back for the charts, and the
empty val curves of a run without validation.

dvclive writes one TSV per curve, `<log dir>/plots/metrics/{train,val}/{loss,accuracy}.tsv`, each with
the header `step<TAB><name>` and one row per epoch, steps counting from 0. A run without validation (the
train stage with `include_validation`) leaves the val curves with a header and no rows.
"""

from __future__ import annotations

from pathlib import Path

from mnist_dvc.errors import PipelineError
from mnist_dvc.input_files import read_input_bytes

# Keras's history keys, and the dvclive curve each is logged as.
TRAIN_CURVES = {"loss": "train/loss", "accuracy": "train/accuracy"}
VALIDATION_CURVES = {"val_loss": "val/loss", "val_accuracy": "val/accuracy"}
CURVES = {**TRAIN_CURVES, **VALIDATION_CURVES}
# Where dvclive puts the curves in its log folder.
CURVES_FOLDER = "plots/metrics"


def read_curve(path: Path, may_be_empty: bool = False) -> list[float]:
    """One curve's values in step order, checking the TSV is what dvclive writes."""
    payload = read_input_bytes(path, "a dvclive curve (run the train stage)")
    try:
        lines = payload.decode("utf-8").split("\n")
    except UnicodeDecodeError as error:
        raise PipelineError(
            f"{path}: expected a dvclive curve, UTF-8 text. Received: bytes that are not text "
            f"(0x{payload[error.start]:02x} at byte {error.start})"
        ) from None
    lines = [line.removesuffix("\r") for line in lines]
    if lines and lines[-1] == "":
        lines.pop()
    name = path.stem
    if not lines or lines[0] != f"step\t{name}":
        received = repr(lines[0]) if lines else "an empty file"
        raise PipelineError(f"{path}: expected the header 'step<TAB>{name}'. Received: {received}")
    values: list[float] = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        try:
            step, value = int(fields[0]), float(fields[1])
        except (ValueError, IndexError):
            raise PipelineError(f"{path}, line {number}: expected '<step><TAB><number>'. Received: {line!r}") from None
        if step != len(values):
            raise PipelineError(f"{path}, line {number}: expected step {len(values)}. Received: {step}")
        values.append(value)
    if not values and not may_be_empty:
        raise PipelineError(f"{path}: expected at least one epoch. Received: none")
    return values


def read_training_curves(log_dir: Path) -> dict[str, list[float]]:
    """{'loss': [...], 'accuracy': [...], 'val_loss': [...], 'val_accuracy': [...]}, one value per epoch; without
    the val_ keys when the run had no validation (both val curves empty)."""
    folder = log_dir / CURVES_FOLDER
    curves = {key: read_curve(folder / f"{curve}.tsv") for key, curve in TRAIN_CURVES.items()}
    validation = {
        key: read_curve(folder / f"{curve}.tsv", may_be_empty=True) for key, curve in VALIDATION_CURVES.items()
    }
    if any(validation.values()):
        curves.update(validation)
    lengths = {key: len(values) for key, values in curves.items()}
    if len(set(lengths.values())) != 1:
        raise PipelineError(
            f"{log_dir}: expected every curve to have one value per epoch (or both val curves none). "
            f"Received: {lengths}"
        )
    return curves


def write_empty_validation_curves(log_dir: Path) -> None:
    """The val curves where dvclive would write them, a header and no epochs: dvc.yaml's plots name these files,
    and a run without validation has no values for them."""
    for curve in VALIDATION_CURVES.values():
        path = log_dir / CURVES_FOLDER / f"{curve}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"step\t{path.stem}\n")
