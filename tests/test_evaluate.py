"""evaluate: metrics against hand-computed answers, and the files DVC's plots read."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mnist_dvc.reports.digit_grids import draw_digit_grid
from stages.evaluate import (
    confusion_csv,
    confusion_matrix,
    cross_entropy,
    misclassified_titles,
    per_class_csv,
    per_class_scores,
    summarise,
)

LABELS = np.array([0, 0, 1, 1, 2, 2], dtype=np.uint8)
PREDICTIONS = np.array([0, 1, 1, 1, 2, 0])


def probabilities_for(predictions: np.ndarray, confidence: float = 0.91) -> np.ndarray:
    probabilities = np.full((len(predictions), 10), (1 - confidence) / 9, dtype=np.float32)
    probabilities[np.arange(len(predictions)), predictions] = confidence
    return probabilities


def test_confusion_matrix_rows_are_true_classes() -> None:
    matrix = confusion_matrix(LABELS, PREDICTIONS, num_classes=3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_per_class_scores_match_a_hand_computation() -> None:
    scores = per_class_scores(confusion_matrix(LABELS, PREDICTIONS, num_classes=3))
    assert scores[1] == {
        "digit": 1,
        "accuracy": 1.0,
        "precision": pytest.approx(2 / 3, abs=1e-6),
        "recall": 1.0,
        "f1": pytest.approx(0.8, abs=1e-6),
        "support": 2,
    }
    assert scores[0]["precision"] == 0.5 and scores[0]["recall"] == 0.5


def test_a_class_never_predicted_scores_zero_not_nan() -> None:
    scores = per_class_scores(confusion_matrix(np.array([0, 1]), np.array([0, 0]), num_classes=3))
    assert scores[1]["precision"] == 0.0 and scores[2] == {
        "digit": 2,
        "accuracy": 0.0,
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }


def test_cross_entropy_of_known_probabilities() -> None:
    probabilities = probabilities_for(np.array([3, 4]), confidence=0.5)
    assert cross_entropy(probabilities, np.array([3, 4])) == pytest.approx(math.log(2), rel=1e-6)


def test_cross_entropy_of_a_certain_mistake_is_finite() -> None:
    probabilities = np.zeros((1, 10), dtype=np.float32)
    probabilities[0, 1] = 1.0
    assert cross_entropy(probabilities, np.array([0])) == pytest.approx(-math.log(1e-7))


def test_summary_counts_errors() -> None:
    summary = summarise(probabilities_for(PREDICTIONS), LABELS)
    assert summary["test"]["errors"] == 2 and summary["test"]["images"] == 6
    assert summary["test"]["accuracy"] == pytest.approx(4 / 6, abs=1e-6)


def test_csv_outputs() -> None:
    assert confusion_csv(LABELS[:2], PREDICTIONS[:2]) == "actual,predicted\n0,0\n0,1\n"
    text = per_class_csv(per_class_scores(confusion_matrix(LABELS, PREDICTIONS, num_classes=3)))
    assert text.splitlines()[0] == "digit,accuracy,precision,recall,f1,support" and len(text.splitlines()) == 4


def test_misclassified_are_most_confident_first() -> None:
    probabilities = probabilities_for(PREDICTIONS)
    probabilities[5, 0] = 0.99
    chosen, titles = misclassified_titles(LABELS, PREDICTIONS, probabilities, limit=5)
    assert chosen.tolist() == [5, 1]
    assert titles == ["true 2, said 0", "true 0, said 1"]
    assert misclassified_titles(LABELS, PREDICTIONS, probabilities, limit=1)[0].tolist() == [5]


def test_digit_grid_is_a_reproducible_png(tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = digits
    titles = [str(label) for label in labels[:10]]
    draw_digit_grid(images[:10], titles, "heading", tmp_path / "a.png")
    draw_digit_grid(images[:10], titles, "heading", tmp_path / "b.png")
    content = (tmp_path / "a.png").read_bytes()
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    assert content == (tmp_path / "b.png").read_bytes()
    draw_digit_grid(images[:0], [], "nothing wrong", tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 0
