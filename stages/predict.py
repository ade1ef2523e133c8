"""Stage 5, predict: label the images to predict (Kaggle's test.csv, or MNIST's test images), and your own images.

As a pipeline stage it writes Kaggle's submission format (`ImageId,Label`, ImageId counting from 1), a
picture of sample digits titled with their predicted label (the picture the tutorial ends with), and,
for the image files in the folder `predict.images`, a CSV and a contact sheet of their predictions.

On its own it reads any digit images you name, files or folders:

    python -m stages.predict --images my_digits/ photo.jpg [--model models/model.keras] [--out-dir digit_predictions]

and writes `predictions.csv` (file, label, confidence, the next two guesses) and `contact_sheet.png`
(each image as the model saw it, with its prediction) into the output folder, and prints a table.
An image that cannot be read, or holds no digit, gets its own error; the others are still predicted
(the command then exits with status 1; the stage records the error in its CSV and log and goes on).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import logging
import sys
from pathlib import Path
from typing import ClassVar

import keras
import numpy as np

from stages.atomic_files import write_text_atomically
from stages.compute import ComputeParams, configure_compute
from stages.digit_grids import draw_digit_grid
from stages.errors import PipelineError
from stages.model_files import load_model
from stages.own_images import IMAGE_SUFFIXES, LoadedImage, image_paths, load_image
from stages.params import check, load_section
from stages.preprocess import read_prepared_images
from stages.runtime import configure_logging, exits_cleanly_on_bad_input

logger = logging.getLogger("stages.predict")

OWN_IMAGES_COLUMNS = ("file", "label", "confidence", "second_label", "second_confidence", "third_label",
                      "third_confidence", "error")


@dataclasses.dataclass(frozen=True)
class PredictParams:
    """The `predict` section of params.yaml."""

    SECTION: ClassVar[str] = "predict"
    batch_size: int
    samples_shown: int
    images: str

    def __post_init__(self) -> None:
        check(self.batch_size >= 1, "predict.batch_size", "a positive integer", self.batch_size)
        check(self.samples_shown >= 0, "predict.samples_shown", "a non-negative integer", self.samples_shown)
        check(bool(self.images.strip()), "predict.images", "a folder of image files", self.images)


@dataclasses.dataclass(frozen=True)
class ImagePrediction:
    """One image file: its top three classes with their probabilities, or why it could not be predicted."""

    path: Path
    pixels: np.ndarray | None
    top_labels: tuple[int, ...] = ()
    top_probabilities: tuple[float, ...] = ()
    error: str | None = None


def submission_csv(predictions: np.ndarray) -> str:
    """Kaggle digit-recognizer submission: header `ImageId,Label`, one row per image, ImageId from 1."""
    rows = "".join(f"{image_id},{label}\n" for image_id, label in enumerate(predictions.tolist(), start=1))
    return "ImageId,Label\n" + rows


def predict_loaded(model: keras.Model, loaded: list[LoadedImage], batch_size: int) -> list[ImagePrediction]:
    """Predict every image that loaded; the others keep their error."""
    readable = [item for item in loaded if item.pixels is not None]
    probabilities = (model.predict(np.stack([item.pixels for item in readable])[..., np.newaxis],  # type: ignore[misc]
                                   batch_size=batch_size, verbose=0) if readable else np.zeros((0, 10)))
    by_path = {}
    for item, row in zip(readable, probabilities, strict=True):
        order = np.argsort(-row, kind="stable")[:3]
        by_path[item.path] = ImagePrediction(item.path, item.pixels, tuple(int(label) for label in order),
                                             tuple(float(row[label]) for label in order))
    return [by_path.get(item.path) or ImagePrediction(item.path, None, error=item.error) for item in loaded]


def own_images_csv(predictions: list[ImagePrediction], relative_to: Path | None = None) -> str:
    """One row per image: its file, label and confidence, the next two guesses, or its error."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(OWN_IMAGES_COLUMNS)
    for prediction in predictions:
        name = _display_path(prediction.path, relative_to)
        guesses: list[str] = []
        for label, probability in zip(prediction.top_labels, prediction.top_probabilities, strict=True):
            guesses += [str(label), f"{probability:.4f}"]
        guesses += [""] * (6 - len(guesses))
        writer.writerow([name, *guesses, prediction.error or ""])
    return buffer.getvalue()


def draw_contact_sheet(predictions: list[ImagePrediction], heading: str, path: Path) -> None:
    """Each image as the model saw it (28x28), titled with its file name and prediction; failures drawn blank."""
    images = np.stack([p.pixels if p.pixels is not None else np.zeros((28, 28), np.uint8) for p in predictions]) \
        if predictions else np.zeros((0, 28, 28), np.uint8)
    titles = [f"{_short(p.path.name)}\n" + (f"{p.top_labels[0]} ({p.top_probabilities[0]:.0%})" if p.error is None
                                            else "unreadable") for p in predictions]
    draw_digit_grid(images, titles, heading, path)


def report_table(predictions: list[ImagePrediction]) -> str:
    """What the command prints: one line per image."""
    lines = []
    for prediction in predictions:
        if prediction.error is None:
            others = ", ".join(f"{label} {probability:.0%}" for label, probability in
                               zip(prediction.top_labels[1:], prediction.top_probabilities[1:], strict=True))
            lines.append(f"{prediction.top_labels[0]}  {prediction.top_probabilities[0]:6.1%}  {prediction.path}"
                         f"   (then {others})")
        else:
            lines.append(f"-  error   {prediction.error}")
    return "\n".join(lines)


def predict_image_files(model: keras.Model, inputs: list[Path], batch_size: int) -> list[ImagePrediction]:
    paths = image_paths(inputs)
    return predict_loaded(model, [load_image(path) for path in paths], batch_size)


def _display_path(path: Path, relative_to: Path | None) -> str:
    if relative_to is not None:
        try:
            return path.relative_to(relative_to).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _short(name: str, limit: int = 14) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _failures(predictions: list[ImagePrediction]) -> list[ImagePrediction]:
    return [prediction for prediction in predictions if prediction.error is not None]


def run_images_command(model_path: Path, inputs: list[Path], out_dir: Path, batch_size: int) -> int:
    """`--images`: predict the named files and folders, write the CSV and contact sheet, print a table."""
    predictions = predict_image_files(load_model(model_path), inputs, batch_size)
    if not predictions:
        raise PipelineError(f"{', '.join(map(str, inputs))}: expected image files ({', '.join(IMAGE_SUFFIXES)}) or "
                            "folders holding some. Received: none")
    write_text_atomically(out_dir / "predictions.csv", own_images_csv(predictions))
    draw_contact_sheet(predictions, f"{len(predictions)} images as the model saw them", out_dir / "contact_sheet.png")
    print(report_table(predictions))
    failures = _failures(predictions)
    print(f"\n{len(predictions) - len(failures)} of {len(predictions)} images predicted; wrote "
          f"{out_dir / 'predictions.csv'} and {out_dir / 'contact_sheet.png'}")
    for failure in failures:
        print(f"error: {failure.error}", file=sys.stderr)
    return 1 if failures else 0


@exits_cleanly_on_bad_input
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--model", type=Path, default=Path("models/model.keras"))
    parser.add_argument("--images", type=Path, nargs="+", help="image files or folders to predict (the command)")
    parser.add_argument("--out-dir", type=Path, default=Path("digit_predictions"),
                        help="with --images: folder for predictions.csv and contact_sheet.png")
    parser.add_argument("--batch-size", type=int, default=256, help="with --images: images per inference batch")
    stage = parser.add_argument_group("as the pipeline stage")
    stage.add_argument("--prepared-dir", type=Path)
    stage.add_argument("--submission-out", type=Path, help="CSV in Kaggle's submission format")
    stage.add_argument("--samples-out", type=Path, help="PNG grid of sample predictions")
    stage.add_argument("--own-images-out", type=Path, help="CSV of the predictions for predict.images")
    stage.add_argument("--own-sheet-out", type=Path, help="PNG contact sheet of predict.images")
    args = parser.parse_args(argv)
    configure_logging()
    # The command and the stage compute alike: the same kernels and threads give the same probabilities.
    configure_compute(load_section(args.params, ComputeParams.SECTION, ComputeParams))
    if args.images:
        return run_images_command(args.model, args.images, args.out_dir, max(1, args.batch_size))
    missing = [flag for flag, value in (("--prepared-dir", args.prepared_dir), ("--submission-out", args.submission_out),
                                        ("--samples-out", args.samples_out), ("--own-images-out", args.own_images_out),
                                        ("--own-sheet-out", args.own_sheet_out)) if value is None]
    if missing:
        parser.error(f"either --images, or all of the stage's arguments (missing: {', '.join(missing)})")

    params = load_section(args.params, PredictParams.SECTION, PredictParams)
    images = read_prepared_images(args.prepared_dir)
    model = load_model(args.model)
    own_folder = Path(params.images)
    if not own_folder.is_dir():
        raise PipelineError(f"{own_folder} (predict.images): expected a folder of image files (it may be empty). "
                            f"Received: {'a file' if own_folder.exists() else 'no such folder'}")
    own = predict_image_files(model, [own_folder], params.batch_size)
    # One bad image must not hold up the whole pipeline: its error goes into the CSV and the log.
    for failure in _failures(own):
        logger.warning("skipped: %s", failure.error)

    predictions = model.predict(images, batch_size=params.batch_size, verbose=0).argmax(axis=1)
    write_text_atomically(args.submission_out, submission_csv(predictions))
    shown = min(params.samples_shown, len(images))
    titles = [f"#{i + 1}: {predictions[i]}" for i in range(shown)]
    draw_digit_grid(images[:shown], titles, "Predicted labels of the first images to predict", args.samples_out)
    write_text_atomically(args.own_images_out, own_images_csv(own, relative_to=own_folder))
    draw_contact_sheet(own, f"Your images in {own_folder}, as the model saw them", args.own_sheet_out)
    logger.info("predicted %d images and %d of your own; wrote %s, %s, %s and %s", len(predictions), len(own),
                args.submission_out, args.samples_out, args.own_images_out, args.own_sheet_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
