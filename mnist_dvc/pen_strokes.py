"""Digits redrawn with an even, round pen along the centre lines of their strokes, as a fine pen, a felt tip
or a drawing canvas draws them (issue 25), for training alongside the originals.

MNIST's writers used pens whose strokes swell at turns and crossings and fill small loops; a digit drawn on
the web page or with a fine pen has strokes of one width everywhere, which the normaliser brings to MNIST's
mean width but cannot make swell as MNIST's do. A model trained on MNIST alone misreads more of those
(docs/own-digits.md has the figures). Here each digit's strokes are thinned to their one-pixel centre line
(Zhang and Suen's thinning) on a 4x copy and drawn again with a round pen of a given width, then brought back
to 28x28 by averaging, which gives the soft edges MNIST's anti-aliasing has.

Only integer and boolean arithmetic: the same images give the same bytes on every CPU.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

UPSCALE = 4  # the centre lines are found on a copy this many times larger
# 4x linear interpolation, per axis: each source pixel spreads over 7 target pixels with these weights.
INTERPOLATION_WEIGHTS = (1, 2, 3, 4, 3, 2, 1)
INK_LEVEL = 128  # a pixel of the enlarged copy is ink above this grey level of 255, as the renderers threshold
# The 8 neighbours of a pixel, clockwise from north (Zhang and Suen's P2 to P9), as (row, column) offsets.
NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def _peel_tables() -> np.ndarray:
    """For each of the 256 neighbourhoods (bit k set: neighbour k is ink), whether Zhang and Suen's first and
    second sub-step peel the pixel: 2-6 ink neighbours, one run of them (so the stroke stays connected), and
    not an end that the sub-step must keep."""
    tables = np.zeros((2, 256), dtype=bool)
    for code in range(256):
        ink = [(code >> bit) & 1 for bit in range(8)]
        runs = sum(1 for bit in range(8) if ink[bit] == 0 and ink[(bit + 1) % 8] == 1)
        north, east, south, west = ink[0], ink[2], ink[4], ink[6]
        peelable = 2 <= sum(ink) <= 6 and runs == 1
        tables[0, code] = peelable and north * east * south == 0 and east * south * west == 0
        tables[1, code] = peelable and north * east * west == 0 and north * south * west == 0
    return tables


PEEL_TABLES = _peel_tables()


def neighbourhood_codes(masks: np.ndarray) -> np.ndarray:
    """uint8 code of each pixel's 8 neighbours in boolean masks (..., h, w): bit k is neighbour k of NEIGHBOURS."""
    height, width = masks.shape[-2:]
    padding = [(0, 0)] * (masks.ndim - 2) + [(1, 1), (1, 1)]
    padded = np.pad(masks, padding)
    codes = np.zeros(masks.shape, dtype=np.uint8)
    for bit, (rows, columns) in enumerate(NEIGHBOURS):
        codes |= padded[..., 1 + rows : 1 + rows + height, 1 + columns : 1 + columns + width].astype(np.uint8) << bit
    return codes


def centre_lines(masks: np.ndarray) -> np.ndarray:
    """The one-pixel centre lines of boolean drawings (n, h, w) (Zhang and Suen, 1984): outline pixels are peeled
    in two alternating sub-steps while every stroke stays connected and keeps its ends. All drawings at once;
    each stops when nothing more can be peeled from it."""
    lines = masks.astype(bool)
    unfinished = np.arange(len(lines))
    while len(unfinished):
        part = lines[unfinished]
        changed = np.zeros(len(part), dtype=bool)
        for table in PEEL_TABLES:
            peeled = part & table[neighbourhood_codes(part)]
            changed |= peeled.any(axis=(1, 2))
            part &= ~peeled
        lines[unfinished] = part
        unfinished = unfinished[changed]
    return lines


def enlarged_ink(images: np.ndarray) -> np.ndarray:
    """Where uint8 images (n, h, w) enlarged UPSCALE times by linear interpolation are over INK_LEVEL: boolean
    (n, h*UPSCALE, w*UPSCALE). Integer sums, so exact on every machine."""
    enlarged = images.astype(np.int32)
    weights = INTERPOLATION_WEIGHTS
    reach = len(weights) // 2
    for axis in (1, 2):
        repeated = np.repeat(enlarged, UPSCALE, axis=axis)
        padding = [(0, 0)] * 3
        padding[axis] = (reach, reach)
        padded = np.pad(repeated, padding, mode="edge")
        length = repeated.shape[axis]
        enlarged = np.zeros(repeated.shape, dtype=np.int32)
        for offset, weight in enumerate(weights):
            enlarged += weight * np.take(padded, np.arange(offset, offset + length), axis=axis)
    scale = sum(weights) ** 2  # both axes' weights
    result: np.ndarray = enlarged > INK_LEVEL * scale
    return result


def widened(lines: np.ndarray, steps: int) -> np.ndarray:
    """Boolean drawings (n, h, w) widened by `steps` pixels on every side, alternating a cross and a square
    (an octagon, close to a round pen)."""
    wide = lines
    for step in range(steps):
        padded = np.pad(wide, ((0, 0), (1, 1), (1, 1)))
        centre = padded[:, 1:-1, 1:-1]
        grown = centre | padded[:, :-2, 1:-1] | padded[:, 2:, 1:-1] | padded[:, 1:-1, :-2] | padded[:, 1:-1, 2:]
        if step % 2 == 1:
            grown |= padded[:, :-2, :-2] | padded[:, :-2, 2:] | padded[:, 2:, :-2] | padded[:, 2:, 2:]
        wide = grown
    return wide


def redrawn_with_pen(images: np.ndarray, pen_widths: np.ndarray, chunk: int = 1000, workers: int = 1) -> np.ndarray:
    """uint8 digits (n, h, w), white on black, redrawn along their centre lines with a round pen of
    `pen_widths[i]` pixels (of the h x w image) each; uint8 (n, h, w). Pieces of `chunk` images bound the
    memory of the 4x copies and go to `workers` threads (NumPy releases the GIL in its array work); the bytes
    depend on neither."""
    if images.ndim != 3 or pen_widths.shape != images.shape[:1]:
        raise ValueError(
            f"expected images (n, h, w) and one pen width per image. Received: {images.shape}, {pen_widths.shape}"
        )
    starts = range(0, len(images), chunk)
    with ThreadPoolExecutor(workers) as pool:
        pieces = list(
            pool.map(
                lambda start: _redrawn_piece(images[start : start + chunk], pen_widths[start : start + chunk]), starts
            )
        )
    return np.concatenate(pieces) if pieces else np.empty_like(images)


def _redrawn_piece(images: np.ndarray, pen_widths: np.ndarray) -> np.ndarray:
    count, height, width = images.shape
    lines = centre_lines(enlarged_ink(images))
    steps = np.round((pen_widths * UPSCALE - 1) / 2).astype(int)
    drawn = np.zeros_like(lines)
    for step in np.unique(steps):
        chosen = steps == step
        drawn[chosen] = widened(lines[chosen], int(step))
    inked = drawn.reshape(count, height, UPSCALE, width, UPSCALE).sum(axis=(2, 4), dtype=np.int32)
    # Each h x w pixel's share of inked sub-pixels, rounded: (2 * 255 * inked + 16) // 32.
    cells = UPSCALE * UPSCALE
    redrawn: np.ndarray = ((2 * 255 * inked + cells) // (2 * cells)).astype(np.uint8)
    return redrawn


def pen_widths(count: int, narrowest: float, widest: float, random_seed: int) -> np.ndarray:
    """`count` pen widths drawn evenly from [narrowest, widest] pixels, repeatably from `random_seed`."""
    return np.random.default_rng(random_seed).uniform(narrowest, widest, count)
