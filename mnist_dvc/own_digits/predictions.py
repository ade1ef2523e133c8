"""Predictions for people's own image files: load, normalise and predict them, one error per bad file.

Shared by the predict stage (the folder `predict.images`) and the `predict_images` command.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mnist_dvc.digit_arrays import IMAGE_SIDE, NUM_CLASSES
from mnist_dvc.own_digits.reading import LoadedImage, image_paths, load_image
from mnist_dvc.reports.digit_grids import draw_digit_grid

# Probabilities (n, 10) of uint8 images (n, 28, 28, 1): a Keras model's `predict`, or a LiteRT predictor's.
Predict = Callable[[np.ndarray], np.ndarray]

OWN_IMAGES_COLUMNS = (
    "file",
    "label",
    "confidence",
    "second_label",
    "second_confidence",
    "third_label",
    "third_confidence",
    "error",
)


@dataclasses.dataclass(frozen=True)
class ImagePrediction:
    """One image file: its top three classes with their probabilities, or why it could not be predicted."""

    path: Path
    pixels: np.ndarray | None
    top_labels: tuple[int, ...] = ()
    top_probabilities: tuple[float, ...] = ()
    error: str | None = None


def predict_loaded(predict: Predict, loaded: list[LoadedImage]) -> list[ImagePrediction]:
    """Predict every image that loaded; the others keep their error."""
    readable = [item for item in loaded if item.pixels is not None]
    probabilities = (
        predict(np.stack([item.pixels for item in readable])[..., np.newaxis])  # type: ignore[misc]
        if readable
        else np.zeros((0, NUM_CLASSES))
    )
    by_path = {}
    for item, row in zip(readable, probabilities, strict=True):
        order = np.argsort(-row, kind="stable")[:3]
        by_path[item.path] = ImagePrediction(
            item.path, item.pixels, tuple(int(label) for label in order), tuple(float(row[label]) for label in order)
        )
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
    """Each image as the model saw it (IMAGE_SIDE pixels square), titled with its file name and prediction;
    failures drawn blank."""
    images = (
        np.stack(
            [p.pixels if p.pixels is not None else np.zeros((IMAGE_SIDE, IMAGE_SIDE), np.uint8) for p in predictions]
        )
        if predictions
        else np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.uint8)
    )
    titles = [
        f"{_short(p.path.name)}\n"
        + (f"{p.top_labels[0]} ({p.top_probabilities[0]:.0%})" if p.error is None else "unreadable")
        for p in predictions
    ]
    draw_digit_grid(images, titles, heading, path)


def predict_image_files(predict: Predict, inputs: list[Path]) -> list[ImagePrediction]:
    """Every image file named in `inputs` (files, or folders searched for image files), predicted."""
    paths = image_paths(inputs)
    return predict_loaded(predict, [load_image(path) for path in paths])


def _display_path(path: Path, relative_to: Path | None) -> str:
    if relative_to is not None:
        try:
            return path.relative_to(relative_to).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _short(name: str, limit: int = 14) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def failures(predictions: list[ImagePrediction]) -> list[ImagePrediction]:
    return [prediction for prediction in predictions if prediction.error is not None]
