"""Stage 6, export: write the trained model as ONNX, float LiteRT and int8 LiteRT, each checked on the test set.

Each format predicts the official test images in its own runtime (onnxruntime, LiteRT's interpreter) and
is compared with the Keras model: the float formats must give the same label as Keras for at least
`export.min_float_label_agreement` of the images, and the int8 model's accuracy must be within
`export.max_int8_accuracy_change` of Keras's. A format that fails its check stops the stage, and none of
the files is written. `metrics/export.json` records each format's size, test accuracy and agreement.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from mnist_dvc.atomic_files import outputs_move_together, write_bytes_atomically, write_text_atomically
from mnist_dvc.errors import PipelineError
from mnist_dvc.formats.prepared_arrays import read_prepared
from mnist_dvc.model.export import to_int8_litert, to_litert, to_onnx
from mnist_dvc.model.files import load_model
from mnist_dvc.model.serving import LiteRTPredictor, OnnxPredictor
from mnist_dvc.params.compute import ComputeParams
from mnist_dvc.params.export import ExportParams
from mnist_dvc.params.loading import load_section
from mnist_dvc.process_setup import configure_logging, exits_cleanly_on_bad_input
from mnist_dvc.reproducible_compute import configure_compute, intra_op_threads

logger = logging.getLogger("stages.export")


@dataclasses.dataclass(frozen=True)
class FormatScore:
    """How one exported format did on the test images, against the Keras model."""

    name: str
    size_bytes: int
    accuracy: float
    label_agreement: float

    def as_json(self) -> dict[str, Any]:
        return {
            "bytes": self.size_bytes,
            "test_accuracy": round(self.accuracy, 6),
            "label_agreement": round(self.label_agreement, 6),
        }


def score_format(
    name: str, size_bytes: int, labels: np.ndarray, keras_labels: np.ndarray, format_probabilities: np.ndarray
) -> FormatScore:
    """Accuracy of a format's predictions, and the share of images where its label is Keras's."""
    predicted = format_probabilities.argmax(axis=1)
    return FormatScore(name, size_bytes, float(np.mean(predicted == labels)), float(np.mean(predicted == keras_labels)))


def check_scores(
    keras_accuracy: float, float_scores: list[FormatScore], int8_score: FormatScore, params: ExportParams
) -> None:
    """Raise, naming the format, the bound and what it got, unless every format passes its check."""
    for score in float_scores:
        if score.label_agreement < params.min_float_label_agreement:
            raise PipelineError(
                f"export, {score.name}: expected the Keras model's label for at least "
                f"{params.min_float_label_agreement:.2%} of the test images "
                f"(export.min_float_label_agreement). Received: {score.label_agreement:.2%}"
            )
    change = int8_score.accuracy - keras_accuracy
    if abs(change) > params.max_int8_accuracy_change:
        raise PipelineError(
            f"export, {int8_score.name}: expected a test accuracy within "
            f"{params.max_int8_accuracy_change * 100:.2f} points of the Keras model's "
            f"{keras_accuracy:.2%} (export.max_int8_accuracy_change). Received: "
            f"{int8_score.accuracy:.2%} ({change * 100:+.2f} points)"
        )


@exits_cleanly_on_bad_input
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared-dir", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--onnx-out", type=Path, required=True, help="the ONNX model")
    parser.add_argument("--litert-out", type=Path, required=True, help="the float32 LiteRT model")
    parser.add_argument("--int8-out", type=Path, required=True, help="the int8 LiteRT model")
    parser.add_argument("--metrics-out", type=Path, required=True, help="JSON of each format's size and scores")
    args = parser.parse_args(argv)
    configure_logging()
    for chatty in ("tf2onnx", "tensorflow"):  # a line per graph rewrite and per SavedModel asset written
        logging.getLogger(chatty).setLevel(logging.WARNING)
    params = load_section(args.params, ExportParams.SECTION, ExportParams)
    compute = load_section(args.params, ComputeParams.SECTION, ComputeParams)
    configure_compute(compute)
    threads = intra_op_threads(compute)
    validation = read_prepared(args.prepared_dir, "val")
    test = read_prepared(args.prepared_dir, "test")
    model = load_model(args.model)
    keras_probabilities = model.predict(test.images, batch_size=params.batch_size, verbose=0)
    keras_labels = keras_probabilities.argmax(axis=1)
    keras_accuracy = float(np.mean(keras_labels == test.labels))

    # ONNX first: its converter's name counter starts at the same value in every stage process.
    onnx_model = to_onnx(model)
    litert_model = to_litert(model)
    int8_model = to_int8_litert(model, validation.images[: params.calibration_images])
    float_scores = [
        score_format(
            "ONNX",
            len(onnx_model),
            test.labels,
            keras_labels,
            OnnxPredictor(onnx_model, threads).predict(test.images, params.batch_size),
        ),
        score_format(
            "LiteRT float32",
            len(litert_model),
            test.labels,
            keras_labels,
            LiteRTPredictor(litert_model, threads).predict(test.images, params.batch_size),
        ),
    ]
    int8_score = score_format(
        "LiteRT int8",
        len(int8_model),
        test.labels,
        keras_labels,
        LiteRTPredictor(int8_model, threads).predict(test.images, params.batch_size),
    )
    check_scores(keras_accuracy, float_scores, int8_score, params)

    summary = {
        "keras": {"test_accuracy": round(keras_accuracy, 6)},
        "onnx": float_scores[0].as_json(),
        "litert": float_scores[1].as_json(),
        "litert_int8": int8_score.as_json(),
        "test_images": len(test.labels),
        "calibration_images": min(params.calibration_images, len(validation.labels)),
    }
    with outputs_move_together():
        for path, content in (
            (args.onnx_out, onnx_model),
            (args.litert_out, litert_model),
            (args.int8_out, int8_model),
        ):
            write_bytes_atomically(path, content)
        write_text_atomically(args.metrics_out, json.dumps(summary, indent=2) + "\n")
    for score in (*float_scores, int8_score):
        logger.info(
            "%s: %d bytes, test accuracy %.4f (Keras %.4f), same label as Keras for %.4f of the images",
            score.name,
            score.size_bytes,
            score.accuracy,
            keras_accuracy,
            score.label_agreement,
        )
    for path in (args.onnx_out, args.litert_out, args.int8_out, args.metrics_out):
        logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
