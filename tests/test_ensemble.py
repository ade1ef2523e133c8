"""`make ensemble` (bench/ensemble.py): averaging members' probabilities, and a real two-seed run on the
small profile."""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from bench.ensemble import Member, accuracy, main, parse_setting, render, running_accuracies, train_ensemble


def one_hot_probabilities(predicted: list[int], confidence: float = 0.9) -> np.ndarray:
    rows = np.full((len(predicted), 10), (1 - confidence) / 9, dtype=np.float32)
    rows[np.arange(len(predicted)), predicted] = confidence
    return rows


def test_accuracy_counts_rows_whose_top_probability_is_the_label() -> None:
    labels = np.array([0, 1, 2, 3])
    assert accuracy(one_hot_probabilities([0, 1, 2, 9]), labels) == 0.75


def test_running_accuracies_average_probabilities_not_votes() -> None:
    labels = np.array([3, 5])
    # Member 1 is right on both but barely sure of the second; member 2 is confidently wrong on it.
    first = one_hot_probabilities([3, 5], confidence=0.9)
    first[1] = 0.0
    first[1, 5], first[1, 7] = 0.55, 0.45
    second = one_hot_probabilities([3, 7], confidence=0.95)
    members = [Member(0, first, 1.0), Member(1, second, 1.0)]
    # Mean of the second row: label 5 gets (0.55 + 0.05/9) / 2, label 7 (0.45 + 0.95) / 2: 7 wins.
    assert running_accuracies(members, labels) == [1.0, 0.5]


def test_render_lists_each_seed_beside_the_ensemble() -> None:
    labels = np.array([0, 1, 2, 3])
    members = [
        Member(4, one_hot_probabilities([0, 1, 2, 9]), 200.0),
        Member(7, one_hot_probabilities([0, 1, 2, 3]), 210.0),
    ]
    table = render(members, labels, ["train.epochs=15"], total_seconds=420.0)
    assert "| 1 | 4 | 200 | 75.00% | 75.00% |" in table
    assert "| 2 | 7 | 210 | 100.00% | 100.00% |" in table
    assert "`train.epochs=15`" in table and "Members' mean 87.50% (lowest 75.00%)" in table
    assert "ensemble of all 2: **100.00%**" in table


@pytest.mark.parametrize("text", ["epochs=3", "train.epochs", ".epochs=3", "train.=3"])
def test_a_setting_without_section_key_and_value_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="section.key=value"):
        parse_setting(text)


def test_a_setting_value_is_read_as_yaml() -> None:
    assert parse_setting("train.learning_rate=0.003") == ("train", "learning_rate", 0.003)
    assert parse_setting("train.model=tutorial") == ("train", "model", "tutorial")


def test_an_unknown_params_key_is_refused_before_any_training(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--seeds", "0", "--set", "train.epoch=3"])
    assert exit_info.value.code == 2
    assert "train.epoch: params.yaml has no such key" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("train.learning_rate=2.0", r"train\.learning_rate must be a number in \(0, 1\]. Received: 2\.0"),
        ("train.epochs=three", r"train\.epochs must be an integer. Received: 'three'"),
        ("trian.epochs=3", r"trian: params.yaml has no such section"),
    ],
)
def test_a_bad_setting_is_refused_by_the_stages_own_schema(
    setting: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--seeds", "0", "--set", setting])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.slow
def test_two_seeds_on_the_small_profile(small_pipeline: Path, tmp_path: Path) -> None:
    """Seed 0 is the repository's own model: `dvc repro train` has nothing to do (no retraining) and the model is
    the one dvc.lock records; seed 1 trains a new one."""
    workspace = Path(shutil.copytree(small_pipeline, tmp_path / "repo", symlinks=True))
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    recorded = {out["path"]: out["md5"] for out in lock["stages"]["train"]["outs"]}["models/model.keras"]

    members, labels = train_ensemble(workspace, [0, 1])

    assert [member.seed for member in members] == [0, 1]
    assert (members[0].model_md5, members[0].trained) == (recorded, False)
    assert members[1].trained and members[1].model_md5 != recorded
    assert not np.array_equal(members[1].probabilities, members[0].probabilities)
    assert members[1].probabilities.shape == (len(labels), 10)
    np.testing.assert_allclose(members[1].probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert len(running_accuracies(members, labels)) == 2
