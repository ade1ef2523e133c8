"""Stage 4, evaluate: score the trained model on the official test images and write `metrics/`.

Outputs: overall accuracy and loss (JSON, for `dvc metrics`), per-class accuracy/precision/recall/F1
(CSV), one `actual,predicted` row per test image (for DVC's confusion-matrix plot), a grid of the
misclassified digits with their true and predicted labels, and PNG charts of the confusion matrix,
the per-class accuracy and the confidence of right and wrong predictions; and the chart of the training
curves that train logged (drawn here, so that a chart's look never retrains the model).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from mnist_dvc.atomic_files import outputs_move_together, write_text_atomically
from mnist_dvc.digit_arrays import NUM_CLASSES
from mnist_dvc.formats.prepared_arrays import read_prepared
from mnist_dvc.formats.training_log import read_training_curves
from mnist_dvc.model.files import load_model
from mnist_dvc.params.compute import ComputeParams
from mnist_dvc.params.evaluate import EvaluateParams
from mnist_dvc.params.loading import load_section
from mnist_dvc.process_setup import configure_logging, exits_cleanly_on_bad_input
from mnist_dvc.reports.charts import (
    draw_confidence_histogram,
    draw_confusion_matrix,
    draw_per_class_accuracy,
    draw_training_curves,
)
from mnist_dvc.reports.digit_grids import draw_digit_grid
from mnist_dvc.reproducible_compute import configure_compute

logger = logging.getLogger("stages.evaluate")

_PROBABILITY_FLOOR = 1e-7  # Keras clips probabilities the same way in its cross-entropy


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean categorical cross-entropy of float probabilities (n, 10) against integer labels (n,)."""
    picked = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    return float(-np.mean(np.log(np.clip(picked, _PROBABILITY_FLOOR, 1.0))))


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """int64 (num_classes, num_classes): row = true class, column = predicted class."""
    return np.bincount(labels.astype(np.int64) * num_classes + predictions, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def per_class_scores(confusion: np.ndarray) -> list[dict[str, Any]]:
    """Accuracy (the share of the class's images classified right, i.e. its recall), precision, recall and F1
    for each class (0 where undefined, as scikit-learn reports it)."""
    true_positives = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros_like(true_positives), where=predicted > 0)
    recall = np.divide(true_positives, actual, out=np.zeros_like(true_positives), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(true_positives), where=denominator > 0)
    return [
        {
            "digit": digit,
            "accuracy": round(float(recall[digit]), 6),
            "precision": round(float(precision[digit]), 6),
            "recall": round(float(recall[digit]), 6),
            "f1": round(float(f1[digit]), 6),
            "support": int(actual[digit]),
        }
        for digit in range(len(confusion))
    ]


def summarise(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The headline test metrics."""
    predictions = probabilities.argmax(axis=1)
    errors = int(np.count_nonzero(predictions != labels))
    return {
        "test": {
            "accuracy": round(1.0 - errors / len(labels), 6),
            "loss": round(cross_entropy(probabilities, labels), 6),
            "errors": errors,
            "images": len(labels),
        }
    }


def per_class_csv(scores: list[dict[str, Any]]) -> str:
    columns = ("digit", "accuracy", "precision", "recall", "f1", "support")
    lines = [",".join(columns)] + [",".join(str(row[column]) for column in columns) for row in scores]
    return "\n".join(lines) + "\n"


def confusion_csv(labels: np.ndarray, predictions: np.ndarray) -> str:
    """One `actual,predicted` row per image: the input DVC's `confusion` template counts."""
    rows = zip(labels.tolist(), predictions.tolist(), strict=True)
    return "actual,predicted\n" + "".join(f"{actual},{predicted}\n" for actual, predicted in rows)


def misclassified_titles(
    labels: np.ndarray, predictions: np.ndarray, probabilities: np.ndarray, limit: int
) -> tuple[np.ndarray, list[str]]:
    """Indices of up to `limit` misclassified images, most confident mistakes first, and their titles."""
    wrong = np.flatnonzero(predictions != labels)
    confidence = probabilities[wrong, predictions[wrong]]
    chosen = wrong[np.argsort(-confidence, kind="stable")][:limit]
    return chosen, [f"true {labels[i]}, said {predictions[i]}" for i in chosen]


@exits_cleanly_on_bad_input
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared-dir", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--metrics-out", type=Path, required=True, help="JSON of test accuracy and loss")
    parser.add_argument("--per-class-out", type=Path, required=True, help="CSV of per-class precision/recall/F1")
    parser.add_argument("--confusion-out", type=Path, required=True, help="CSV of actual,predicted per image")
    parser.add_argument("--misclassified-out", type=Path, required=True, help="PNG grid of misclassified digits")
    parser.add_argument("--confusion-png-out", type=Path, required=True, help="PNG chart of the confusion matrix")
    parser.add_argument("--per-class-png-out", type=Path, required=True, help="PNG bar chart of per-class accuracy")
    parser.add_argument("--training-log", type=Path, required=True, help="train's dvclive folder (the curves)")
    parser.add_argument("--curves-png-out", type=Path, required=True, help="PNG chart of the training curves")
    parser.add_argument(
        "--confidence-png-out",
        type=Path,
        required=True,
        help="PNG histogram of the confidence of right and wrong predictions",
    )
    args = parser.parse_args(argv)
    configure_logging()
    params = load_section(args.params, EvaluateParams.SECTION, EvaluateParams)
    configure_compute(load_section(args.params, ComputeParams.SECTION, ComputeParams))
    test = read_prepared(args.prepared_dir, "test")
    curves = read_training_curves(args.training_log)
    model = load_model(args.model)
    probabilities = model.predict(test.images, batch_size=params.batch_size, verbose=0)
    predictions = probabilities.argmax(axis=1)

    summary = summarise(probabilities, test.labels)
    confusion = confusion_matrix(test.labels, predictions)
    scores = per_class_scores(confusion)
    with outputs_move_together():
        write_text_atomically(args.metrics_out, json.dumps(summary, indent=2) + "\n")
        write_text_atomically(args.per_class_out, per_class_csv(scores))
        write_text_atomically(args.confusion_out, confusion_csv(test.labels, predictions))
        chosen, titles = misclassified_titles(test.labels, predictions, probabilities, params.max_misclassified_shown)
        heading = f"{summary['test']['errors']} of {len(test.labels)} test digits misclassified (most confident first)"
        draw_digit_grid(test.images[chosen], titles, heading, args.misclassified_out)
        draw_confusion_matrix(confusion, args.confusion_png_out)
        draw_per_class_accuracy(
            np.array([row["accuracy"] for row in scores]),
            np.array([row["support"] for row in scores]),
            args.per_class_png_out,
        )
        draw_confidence_histogram(probabilities.max(axis=1), predictions == test.labels, args.confidence_png_out)
        draw_training_curves(curves, args.curves_png_out)
    logger.info(
        "test accuracy %.4f, loss %.4f (%d errors in %d images)",
        summary["test"]["accuracy"],
        summary["test"]["loss"],
        summary["test"]["errors"],
        len(test.labels),
    )
    for path in (
        args.metrics_out,
        args.per_class_out,
        args.confusion_out,
        args.misclassified_out,
        args.curves_png_out,
        args.confusion_png_out,
        args.per_class_png_out,
        args.confidence_png_out,
    ):
        logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
