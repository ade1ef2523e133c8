"""Stage 5, predict: label the images to predict (Kaggle's test.csv, or MNIST's test images), and your own images.

As a pipeline stage it writes Kaggle's submission format (`ImageId,Label`, ImageId counting from 1), a
picture of sample digits titled with their predicted label (the picture the tutorial ends with), and,
for the image files in the folder `predict.images`, a CSV and a contact sheet of their predictions.

An image of yours that cannot be read, or holds no digit, is recorded with its error in the CSV and the
log, and the stage goes on. To predict images outside the pipeline: `python -m mnist_dvc.own_digits.command`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from mnist_dvc.atomic_files import outputs_move_together, write_text_atomically
from mnist_dvc.errors import PipelineError
from mnist_dvc.formats.prepared_arrays import read_prepared_images
from mnist_dvc.model.files import load_model
from mnist_dvc.own_digits.predictions import draw_contact_sheet, failures, own_images_csv, predict_image_files
from mnist_dvc.params.compute import ComputeParams
from mnist_dvc.params.loading import load_section
from mnist_dvc.params.predict import PredictParams
from mnist_dvc.process_setup import configure_logging, exits_cleanly_on_bad_input
from mnist_dvc.reports.digit_grids import draw_digit_grid
from mnist_dvc.reproducible_compute import configure_compute

logger = logging.getLogger("stages.predict")


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
    parser.add_argument("--own-images-out", type=Path, required=True, help="CSV of the predictions for predict.images")
    parser.add_argument("--own-sheet-out", type=Path, required=True, help="PNG contact sheet of predict.images")
    args = parser.parse_args(argv)
    configure_logging()
    configure_compute(load_section(args.params, ComputeParams.SECTION, ComputeParams))
    params = load_section(args.params, PredictParams.SECTION, PredictParams)
    images = read_prepared_images(args.prepared_dir)
    model = load_model(args.model)
    own_folder = Path(params.images)
    if not own_folder.is_dir():
        raise PipelineError(
            f"{own_folder} (predict.images): expected a folder of image files (it may be empty). "
            f"Received: {'a file' if own_folder.exists() else 'no such folder'}"
        )
    own = predict_image_files(
        lambda pixels: model.predict(pixels, batch_size=params.batch_size, verbose=0), [own_folder]
    )
    # One bad image must not hold up the whole pipeline: its error goes into the CSV and the log.
    for failure in failures(own):
        logger.warning("skipped: %s", failure.error)

    predictions = model.predict(images, batch_size=params.batch_size, verbose=0).argmax(axis=1)
    with outputs_move_together():
        write_text_atomically(args.submission_out, submission_csv(predictions))
        shown = min(params.samples_shown, len(images))
        titles = [f"#{i + 1}: {predictions[i]}" for i in range(shown)]
        draw_digit_grid(images[:shown], titles, "Predicted labels of the first images to predict", args.samples_out)
        write_text_atomically(args.own_images_out, own_images_csv(own, relative_to=own_folder))
        draw_contact_sheet(own, f"Your images in {own_folder}, as the model saw them", args.own_sheet_out)
    logger.info(
        "predicted %d images and %d of your own; wrote %s, %s, %s and %s",
        len(predictions),
        len(own),
        args.submission_out,
        args.samples_out,
        args.own_images_out,
        args.own_sheet_out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
