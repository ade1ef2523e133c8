"""Predict your own digit images: `mnist-predict-images my_digits/ photo.jpg` (the console script `make install`
installs into .venv/bin; `python -m mnist_dvc.own_digits.command` runs the same).

Reads any digit images you name, files or folders (PNG, JPEG, BMP, GIF, TIFF, WebP; any size and
colours), normalises them the way MNIST was made, and writes `predictions.csv` (file, label,
confidence, the next two guesses) and `contact_sheet.png` (each image as the model saw it, with its
prediction) into the output folder, and prints a table. An image that cannot be read, or holds no
digit, gets its own error line; the others are still predicted, and the command then exits with status 1.

    mnist-predict-images IMAGE_OR_FOLDER... [--model models/model.tflite] [--out-dir digit_predictions]

By default it runs the export stage's float LiteRT model through LiteRT's interpreter, without importing
TensorFlow (30 images take about 1.2 s from the command line, against 5.5-7 s with Keras).
`--model models/model.keras` runs the Keras model as the predict stage does, giving exactly the stage's
probabilities (LiteRT's differ from them by about 1e-6, with the same labels).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnist_dvc.atomic_files import write_text_atomically
from mnist_dvc.errors import PipelineError
from mnist_dvc.input_files import read_input_bytes
from mnist_dvc.model.serving import LiteRTPredictor
from mnist_dvc.own_digits.predictions import (
    ImagePrediction,
    Predict,
    draw_contact_sheet,
    failures,
    own_images_csv,
    predict_image_files,
)
from mnist_dvc.own_digits.reading import IMAGE_SUFFIXES
from mnist_dvc.params.compute import ComputeParams
from mnist_dvc.params.loading import load_section
from mnist_dvc.process_setup import configure_logging, exits_cleanly_on_bad_input, prepare_tensorflow_environment
from mnist_dvc.reproducible_compute import configure_compute, intra_op_threads


def report_table(predictions: list[ImagePrediction]) -> str:
    """What the command prints: one line per image."""
    lines = []
    for prediction in predictions:
        if prediction.error is None:
            others = ", ".join(
                f"{label} {probability:.0%}"
                for label, probability in zip(prediction.top_labels[1:], prediction.top_probabilities[1:], strict=True)
            )
            lines.append(
                f"{prediction.top_labels[0]}  {prediction.top_probabilities[0]:6.1%}  {prediction.path}"
                f"   (then {others})"
            )
        else:
            lines.append(f"-  error   {prediction.error}")
    return "\n".join(lines)


LITERT_SUFFIX = ".tflite"


def model_predictor(model_path: Path, compute: ComputeParams, batch_size: int) -> Predict:
    """The probabilities function of a LiteRT (`.tflite`) or Keras (`.keras`) model file."""
    if model_path.suffix == LITERT_SUFFIX:
        litert = LiteRTPredictor(
            read_input_bytes(model_path, "a LiteRT model (run `dvc repro export`)"),
            threads=intra_op_threads(compute),
            source=str(model_path),
        )
        return lambda pixels: litert.predict(pixels, batch_size)
    # Keras: TensorFlow is imported only here; the same kernels and threads as the predict stage give the
    # same probabilities.
    configure_compute(compute)
    from mnist_dvc.model.files import load_model

    model = load_model(model_path)
    return lambda pixels: model.predict(pixels, batch_size=batch_size, verbose=0)


def run_images_command(predict: Predict, inputs: list[Path], out_dir: Path) -> int:
    """Predict the named files and folders, write the CSV and contact sheet, print a table."""
    predictions = predict_image_files(predict, inputs)
    if not predictions:
        raise PipelineError(
            f"{', '.join(map(str, inputs))}: expected image files ({', '.join(IMAGE_SUFFIXES)}) or "
            "folders holding some. Received: none"
        )
    write_text_atomically(out_dir / "predictions.csv", own_images_csv(predictions))
    draw_contact_sheet(predictions, f"{len(predictions)} images as the model saw them", out_dir / "contact_sheet.png")
    print(report_table(predictions))
    unpredicted = failures(predictions)
    print(
        f"\n{len(predictions) - len(unpredicted)} of {len(predictions)} images predicted; wrote "
        f"{out_dir / 'predictions.csv'} and {out_dir / 'contact_sheet.png'}"
    )
    for failure in unpredicted:
        print(f"error: {failure.error}", file=sys.stderr)
    return 1 if unpredicted else 0


@exits_cleanly_on_bad_input
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, nargs="+", help="image files or folders to predict")
    parser.add_argument(
        "--model",
        type=Path,
        default=Path("models/model.tflite"),
        help="a LiteRT model (.tflite, fast) or a Keras model (.keras, the predict stage's numbers)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path("digit_predictions"),
        help="folder for predictions.csv and contact_sheet.png",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per inference batch")
    parser.add_argument(
        "--params",
        type=Path,
        default=Path("params.yaml"),
        help="the params file whose `compute` section the predict stage uses (its threads)",
    )
    args = parser.parse_args(argv)
    prepare_tensorflow_environment()  # a Keras model imports TensorFlow below
    configure_logging()
    compute = load_section(args.params, ComputeParams.SECTION, ComputeParams)
    return run_images_command(model_predictor(args.model, compute, max(1, args.batch_size)), args.images, args.out_dir)


if __name__ == "__main__":
    raise SystemExit(main())
