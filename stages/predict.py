"""Stage 5, predict: label the test images with the trained model.

Writes Kaggle's submission format (`ImageId,Label`, ImageId counting from 1) and a picture of sample
digits titled with their predicted label, the picture the tutorial ends with.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import ClassVar

import numpy as np

from stages.atomic_files import write_text_atomically
from stages.digit_grids import draw_digit_grid
from stages.model_files import load_model
from stages.params import check, load_section
from stages.preprocess import read_prepared
from stages.runtime import configure_logging, exits_cleanly_on_bad_input

logger = logging.getLogger("stages.predict")


@dataclasses.dataclass(frozen=True)
class PredictParams:
    """The `predict` section of params.yaml."""

    SECTION: ClassVar[str] = "predict"
    batch_size: int
    samples_shown: int

    def __post_init__(self) -> None:
        check(self.batch_size >= 1, "predict.batch_size", "a positive integer", self.batch_size)
        check(self.samples_shown >= 0, "predict.samples_shown", "a non-negative integer", self.samples_shown)


def submission_csv(predictions: np.ndarray) -> str:
    """Kaggle digit-recognizer submission: header `ImageId,Label`, one row per image, ImageId from 1."""
    rows = "".join(f"{image_id},{label}\n" for image_id, label in enumerate(predictions.tolist(), start=1))
    return "ImageId,Label\n" + rows


@exits_cleanly_on_bad_input
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared-dir", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--submission-out", type=Path, required=True, help="CSV in Kaggle's submission format")
    parser.add_argument("--samples-out", type=Path, required=True, help="PNG grid of sample predictions")
    args = parser.parse_args(argv)
    configure_logging()
    params = load_section(args.params, PredictParams.SECTION, PredictParams)
    images = read_prepared(args.prepared_dir, "test").images
    model = load_model(args.model)
    predictions = model.predict(images, batch_size=params.batch_size, verbose=0).argmax(axis=1)
    write_text_atomically(args.submission_out, submission_csv(predictions))
    shown = min(params.samples_shown, len(images))
    titles = [f"#{i + 1}: {predictions[i]}" for i in range(shown)]
    draw_digit_grid(images[:shown], titles, "Predicted labels of the first test images", args.samples_out)
    logger.info("predicted %d images; wrote %s and %s", len(predictions), args.submission_out, args.samples_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
