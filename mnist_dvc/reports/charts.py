"""The pipeline's charts as reproducible PNGs (matplotlib, Agg, no metadata): what the README embeds.

`dvc plots show` draws the same data interactively from the CSV/TSV files; these PNGs are the
committed run's pictures, readable on GitHub and in a terminal image viewer without DVC.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI; Agg also renders the same bytes every time
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mnist_dvc.atomic_files import atomic_file  # noqa: E402

CONFIDENCE_BINS = np.linspace(0.0, 1.0, 21)


def save_figure(figure: Figure, path: Path, dpi: int = 80) -> None:
    """Save `figure` as PNG atomically, without Software/date metadata (the bytes depend on the pixels alone)."""
    with atomic_file(path) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(figure)


def draw_training_curves(history: dict[str, list[float]], path: Path) -> None:
    """Loss and accuracy per epoch, training and (when the run had it) validation, side by side."""
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        axis.plot(epochs, history[metric], marker="o", label="train")
        if f"val_{metric}" in history:
            axis.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    save_figure(figure, path)


def draw_confusion_matrix(confusion: np.ndarray, path: Path) -> None:
    """Counts of (true, predicted) pairs; the diagonal is left pale so the mistakes stand out."""
    off_diagonal = confusion.astype(np.float64).copy()
    np.fill_diagonal(off_diagonal, 0.0)
    figure, axis = plt.subplots(figsize=(5.6, 5))
    axis.imshow(off_diagonal, cmap="Reds", vmin=0, vmax=max(1.0, off_diagonal.max()))
    for (row, column), count in np.ndenumerate(confusion):
        if count:
            axis.text(
                column,
                row,
                str(count),
                ha="center",
                va="center",
                fontsize=7,
                color="black" if row == column or off_diagonal[row, column] < 0.6 * off_diagonal.max() else "white",
            )
    classes = np.arange(len(confusion))
    axis.set_xticks(classes)
    axis.set_yticks(classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"Confusion matrix: {int(confusion.trace())} of {int(confusion.sum())} right")
    figure.tight_layout()
    save_figure(figure, path)


def draw_per_class_accuracy(accuracy: np.ndarray, support: np.ndarray, path: Path) -> None:
    """One bar per digit: the share of its test images classified right."""
    figure, axis = plt.subplots(figsize=(6.5, 3.4))
    classes = np.arange(len(accuracy))
    axis.bar(classes, accuracy * 100.0, color="tab:blue")
    low = max(0.0, float(np.floor(accuracy.min() * 100.0)) - 1.0) if len(accuracy) else 0.0
    axis.set_ylim(low, 100.0)
    for digit, (value, count) in enumerate(zip(accuracy, support, strict=True)):
        axis.text(digit, value * 100.0, f"{value:.1%}", ha="center", va="bottom", fontsize=7)
        axis.text(digit, low, f"n={count}", ha="center", va="bottom", fontsize=6, color="white")
    axis.set_xticks(classes)
    axis.set_xlabel("digit")
    axis.set_ylabel("accuracy (%)")
    axis.set_title("Per-class accuracy on the test set")
    figure.tight_layout()
    save_figure(figure, path)


def confidence_histograms(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts per confidence bin (20 bins over [0, 1]) of the right and of the wrong predictions."""
    right, _ = np.histogram(confidence[correct], bins=CONFIDENCE_BINS)
    wrong, _ = np.histogram(confidence[~correct], bins=CONFIDENCE_BINS)
    return right, wrong


def draw_confidence_histogram(confidence: np.ndarray, correct: np.ndarray, path: Path) -> None:
    """How sure the model was (its top probability), for right and wrong predictions, on a log scale."""
    right, wrong = confidence_histograms(confidence, correct)
    figure, axis = plt.subplots(figsize=(6.5, 3.4))
    centres = (CONFIDENCE_BINS[:-1] + CONFIDENCE_BINS[1:]) / 2
    width = CONFIDENCE_BINS[1] - CONFIDENCE_BINS[0]
    axis.bar(centres - width / 4, right, width=width / 2, label=f"right ({int(right.sum())})", color="tab:green")
    axis.bar(centres + width / 4, wrong, width=width / 2, label=f"wrong ({int(wrong.sum())})", color="tab:red")
    axis.set_yscale("log")
    axis.set_xlim(0.0, 1.0)
    axis.set_xlabel("confidence (probability of the predicted class)")
    axis.set_ylabel("test images")
    axis.set_title("Confidence of right and wrong predictions")
    axis.legend(loc="upper left")
    figure.tight_layout()
    save_figure(figure, path)
