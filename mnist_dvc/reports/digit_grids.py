"""Pictures of digits: a grid of 28x28 images, each titled, saved as a reproducible PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from mnist_dvc.digits import IMAGE_SIDE
from mnist_dvc.reports.charts import save_figure


def draw_digit_grid(images: np.ndarray, titles: list[str], heading: str, path: Path, columns: int = 8) -> None:
    """Save images (uint8, shape (n, 28, 28, 1) or (n, 28, 28)) in a grid with one title each.

    An empty `images` gives a picture that says so, so the output always exists.
    """
    if len(images) != len(titles):
        raise ValueError(f"Expected one title per image. Received: {len(images)} images, {len(titles)} titles")
    count = len(images)
    columns = max(1, min(columns, count))
    rows = max(1, -(-count // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.5 * rows + 0.5), squeeze=False)
    for position, axis in enumerate(axes.flat):
        axis.axis("off")
        if position < count:
            axis.imshow(images[position].reshape(IMAGE_SIDE, IMAGE_SIDE), cmap="gray_r", vmin=0, vmax=255)
            axis.set_title(titles[position], fontsize=9)
    if count == 0:
        axes.flat[0].text(0.5, 0.5, "none", ha="center", va="center", fontsize=14)
    figure.suptitle(heading, fontsize=11)
    figure.tight_layout()
    save_figure(figure, path)
