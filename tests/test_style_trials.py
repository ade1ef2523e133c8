"""bench/style_trials.py: models scored on validation digits redrawn in each style, paired with the arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import own_images, style_trials
from mnist_dvc.digit_arrays import LabelledImages
from mnist_dvc.formats.prepared_arrays import write_prepared
from mnist_dvc.model.architectures import Augmentation, build_compact_model
from mnist_dvc.model.files import save_model
from tests.conftest import synthetic_digits


def test_paired_change_counts_the_digits_lost_and_gained() -> None:
    as_arrays = np.array([True, True, False, True, True])
    assert own_images.paired_change(as_arrays, np.array([True, False, True, True, True])) == (0.0, 1, 1)
    change, lost, gained = own_images.paired_change(as_arrays, np.array([False, False, False, True, True]))
    assert (change, lost, gained) == (pytest.approx(-40.0), 2, 0)
    with pytest.raises(ValueError, match=r"same shape. Received: \(2,\), \(5,\)"):
        own_images.paired_change(as_arrays, np.array([True, False]))


def test_each_model_gets_a_row_and_redrawn_digits_are_kept_until_the_drawing_code_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    images, labels = synthetic_digits(per_class=1)
    split = LabelledImages(images[..., np.newaxis], labels)
    write_prepared({"val": split}, images[..., np.newaxis], tmp_path / "prepared")
    models = [tmp_path / "first.keras", tmp_path / "second.keras"]
    for seed, path in enumerate(models):
        save_model(build_compact_model(Augmentation(0.0, 0.0, 0.0), random_seed=seed), path)
    cache = tmp_path / "cache"
    arguments = [*map(str, models), "--digits", "6", "--styles", "black-on-white-png", "white-on-black-bmp"]
    arguments += ["--prepared-dir", str(tmp_path / "prepared"), "--cache", str(cache), "--out", str(tmp_path / "t.md")]

    assert style_trials.main(arguments) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]  # not the |---| row
    assert rows[0] == "| model | as arrays | black-on-white-png | white-on-black-bmp |"
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| first", "| second"]
    for row in rows[1:]:
        cells = row.strip("| ").split(" | ")
        assert len(cells) == 4
        for cell in cells[2:]:
            change, lost_gained = cell.split(" ", 1)
            lost, gained = map(int, lost_gained.strip("()").split(", "))
            # 6 digits: each one lost or gained moves the accuracy by 100/6 points.
            assert float(change) == pytest.approx(100 * (gained - lost) / 6, abs=0.01)
    assert [line for line in (tmp_path / "t.md").read_text().splitlines() if line.startswith("| ")] == rows
    stored = sorted(cache.iterdir())
    assert len(stored) == 2
    with np.load(stored[0]) as kept:
        assert kept["images"].shape == (6, 28, 28, 1) and kept["images"].dtype == np.uint8
        assert kept["readable"].all() and kept["images"].max() > 0

    # Kept: a second run redraws nothing.
    def no_drawing(job: object) -> None:
        raise AssertionError("redrew a digit that was kept")

    monkeypatch.setattr(style_trials, "rendered_and_normalised", no_drawing)
    assert style_trials.main(arguments) == 0
    assert rows == [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    # Changed drawing code: redrawn, beside the old ones.
    monkeypatch.undo()
    monkeypatch.setattr(style_trials, "drawing_code_digest", lambda: "changed")
    assert style_trials.main([*arguments[:2], "--digits", "6", "--styles", "black-on-white-png", *arguments[-6:]]) == 0
    assert len(list(cache.iterdir())) == 3
