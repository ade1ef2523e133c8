"""Pictures of digits: a grid of 28x28 images, each titled, saved as a reproducible PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from mnist_dvc.digit_arrays import IMAGE_SIDE
from mnist_dvc.reports.charts import save_figure

# One grid cell, in image pixels: the digit, with room above it for a title of up to two lines, and a gap.
_CELL_WIDTH = IMAGE_SIDE + 8
_TITLE_HEIGHT = 14
_CELL_HEIGHT = _TITLE_HEIGHT + IMAGE_SIDE + 2
_INCHES_PER_PIXEL = 1.3 / _CELL_WIDTH  # a cell 1.3 inches wide
_HEADING_INCHES = 0.5


def digit_mosaic(images: np.ndarray, columns: int) -> np.ndarray:
    """The images (uint8, (n, 28, 28[, 1])) tiled row by row into one uint8 picture, 0 around and between them."""
    rows = max(1, -(-len(images) // columns))
    mosaic = np.zeros((rows * _CELL_HEIGHT, columns * _CELL_WIDTH), dtype=np.uint8)
    for position, image in enumerate(images):
        top = (position // columns) * _CELL_HEIGHT + _TITLE_HEIGHT
        left = (position % columns) * _CELL_WIDTH + (_CELL_WIDTH - IMAGE_SIDE) // 2
        mosaic[top : top + IMAGE_SIDE, left : left + IMAGE_SIDE] = image.reshape(IMAGE_SIDE, IMAGE_SIDE)
    return mosaic


def draw_digit_grid(images: np.ndarray, titles: list[str], heading: str, path: Path, columns: int = 8) -> None:
    """Save images (uint8, shape (n, 28, 28, 1) or (n, 28, 28)) in a grid with one title each.

    An empty `images` gives a picture that says so, so the output always exists.
    """
    if len(images) != len(titles):
        raise ValueError(f"Expected one title per image. Received: {len(images)} images, {len(titles)} titles")
    count = len(images)
    columns = max(1, min(columns, count))
    mosaic = digit_mosaic(images, columns)
    # One axes holding one mosaic, not an axes per digit: matplotlib spends most of its time laying out
    # axes (a 48-digit grid took 2 s that way), and the cells' sizes are known without a layout pass.
    grid_height, grid_width = (side * _INCHES_PER_PIXEL for side in mosaic.shape)
    figure = plt.figure(figsize=(grid_width, grid_height + _HEADING_INCHES))
    axis = figure.add_axes((0.0, 0.0, 1.0, grid_height / (grid_height + _HEADING_INCHES)))
    axis.axis("off")
    axis.imshow(mosaic, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest", aspect="equal")
    for position, title in enumerate(titles):
        x = (position % columns + 0.5) * _CELL_WIDTH - 0.5
        y = (position // columns) * _CELL_HEIGHT + _TITLE_HEIGHT - 1.5
        axis.text(x, y, title, ha="center", va="bottom", fontsize=9, multialignment="center")
    if count == 0:
        axis.text(mosaic.shape[1] / 2, mosaic.shape[0] / 2, "none", ha="center", va="center", fontsize=14)
    figure.suptitle(heading, fontsize=11, y=1.0 - 0.12 / (grid_height + _HEADING_INCHES), va="top")
    save_figure(figure, path)
