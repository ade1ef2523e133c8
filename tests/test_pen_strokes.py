"""Digits redrawn with an even pen (mnist_dvc/pen_strokes.py): centre lines, pen widths, exactness."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_dvc.own_digits.reading import stroke_width
from mnist_dvc.pen_strokes import UPSCALE, centre_lines, enlarged_ink, pen_widths, redrawn_with_pen
from tests.conftest import ring


def test_centre_lines_follow_the_middle_of_strokes_and_keep_them_connected() -> None:
    """A 9-pixel-thick bar thins to one line of its length; a thick ring stays one closed ring (nothing broken
    apart, as erosion would break thin parts); several drawings at once give what each gives alone."""
    bar = np.zeros((40, 60), bool)
    bar[15:24, 5:55] = True
    line = centre_lines(bar[np.newaxis])[0]
    assert line.sum() <= 52 and set(np.flatnonzero(line.any(axis=0))) >= set(range(10, 50))
    assert line.any(axis=1).sum() <= 2  # one row (two where the ends bend)
    assert set(np.flatnonzero(line.any(axis=1))) <= {18, 19, 20}
    drawn_ring = ring(60, 22, 14)
    thin_ring = centre_lines(drawn_ring[np.newaxis])[0]
    rows, columns = np.indices(drawn_ring.shape)
    radius = np.hypot(rows - 30, columns - 30)
    assert 0 < thin_ring.sum() < drawn_ring.sum() / 4
    assert not thin_ring[radius < 14].any() and not thin_ring[radius > 22].any()
    padded = np.pad(thin_ring, 1)
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    neighbours = np.sum([np.roll(padded, shift, (0, 1)).astype(int) for shift in shifts], axis=0)[1:-1, 1:-1]
    assert (neighbours[thin_ring] >= 2).all()  # closed: no loose end
    together = centre_lines(np.stack([drawn_ring, np.pad(bar, ((10, 10), (0, 0)))[:, :60]]))
    assert (together[0] == thin_ring).all()
    assert (together[1] == centre_lines(np.pad(bar, ((10, 10), (0, 0)))[np.newaxis, :, :60])[0]).all()


def test_enlarged_ink_is_where_the_interpolated_grey_is_over_128() -> None:
    flat = np.full((1, 5, 5), 129, np.uint8)
    assert enlarged_ink(flat).shape == (1, 5 * UPSCALE, 5 * UPSCALE) and enlarged_ink(flat).all()
    assert not enlarged_ink(np.full((1, 5, 5), 128, np.uint8)).any()
    step = np.zeros((1, 4, 8), np.uint8)
    step[:, :, 4:] = 255  # a sharp edge between columns 3 and 4 stays there in the enlarged copy
    inked_columns = np.flatnonzero(enlarged_ink(step)[0].all(axis=0))
    assert inked_columns.tolist() == list(range(4 * UPSCALE, 8 * UPSCALE))


@pytest.mark.parametrize("width", [1.5, 3.0, 5.0])
def test_a_bold_bar_is_redrawn_with_the_pen_width_asked_for(width: float) -> None:
    """A 7-pixel-thick bar redrawn with a `width`-pixel pen: centred where it was, its ink per column (its
    width, in pixels of full ink) within half a pixel of the pen's, and shorter by the difference in the pens'
    half-widths at each end (a pen's stroke reaches half its width past the ends of its path)."""
    bar = np.zeros((1, 28, 28), np.uint8)
    bar[0, 10:17, 4:24] = 255
    redrawn = redrawn_with_pen(bar, np.array([width]))[0].astype(np.float64) / 255.0
    middle = redrawn[:, 8:20]
    assert np.abs(middle.sum(axis=0) - width).max() <= 0.5
    assert abs(float((np.arange(28)[:, None] * middle).sum() / middle.sum()) - 13.0) < 0.6
    inked = np.flatnonzero(redrawn.sum(axis=0) > 0.5)
    shorter = (7 - width) / 2
    assert abs(inked[0] - (4 + shorter)) <= 1 and abs(inked[-1] - (23 - shorter)) <= 1


def test_a_thick_zero_keeps_its_loop_and_a_thin_pen_thins_it() -> None:
    zero = (ring(28, 11, 4) * 255).astype(np.uint8)[np.newaxis]
    for width in (1.5, 4.0):
        drawn = redrawn_with_pen(zero, np.array([width]))[0]
        mask = drawn > 127
        assert not mask[12:16, 12:16].any(), "the loop stays open"
        assert 0.6 * width < stroke_width(mask) < 1.6 * width + 1
        assert mask.sum() < (zero[0] > 127).sum()


def test_redrawing_is_exact_and_does_not_depend_on_how_the_images_are_split() -> None:
    rng = np.random.default_rng(0)
    images = np.zeros((25, 28, 28), np.uint8)
    for image in images:  # blurry random strokes
        rows = rng.integers(6, 22, 2)
        image[min(rows) : max(rows) + 3, 6:22] = rng.integers(150, 256)
    widths = pen_widths(len(images), 1.5, 4.0, random_seed=3)
    whole = redrawn_with_pen(images, widths)
    assert whole.dtype == np.uint8 and whole.shape == images.shape
    assert (redrawn_with_pen(images, widths, chunk=4) == whole).all()
    assert (redrawn_with_pen(images, widths, chunk=4, workers=3) == whole).all()
    assert (redrawn_with_pen(images, widths) == whole).all()


def test_pen_widths_lie_in_the_range_and_repeat_with_the_seed() -> None:
    widths = pen_widths(1000, 1.5, 4.0, random_seed=7)
    assert widths.min() >= 1.5 and widths.max() <= 4.0 and 2.5 < widths.mean() < 3.0
    assert (pen_widths(1000, 1.5, 4.0, random_seed=7) == widths).all()
    assert not (pen_widths(1000, 1.5, 4.0, random_seed=8) == widths).all()


def test_redrawing_refuses_a_width_count_that_does_not_match() -> None:
    with pytest.raises(ValueError, match=r"one pen width per image. Received: \(2, 28, 28\), \(3,\)"):
        redrawn_with_pen(np.zeros((2, 28, 28), np.uint8), np.ones(3))
