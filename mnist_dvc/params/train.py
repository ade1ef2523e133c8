"""The `train` section of params.yaml: its keys, types and ranges."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mnist_dvc.params.loading import check, check_each

# The architectures of mnist_dvc.model.architectures, by the name this key gives them.
MODEL_NAMES = ("compact", "tutorial")
# Filters of one convolution: at least 1, and a bound that catches a typo's extra digit before it exhausts memory.
MAX_FILTERS = 1024
SCHEDULES = ("constant", "cosine")
# The widest pen a redrawn training digit gets, in pixels of the 28x28 image: MNIST's boldest strokes are about 6.
MAX_PEN_WIDTH = 8.0


@dataclasses.dataclass(frozen=True)
class TrainParams:
    """The `train` section of params.yaml."""

    SECTION: ClassVar[str] = "train"
    model: str
    compact_filters: tuple[int, ...]
    random_seed: int
    epochs: int
    batch_size: int
    learning_rate: float
    schedule: str
    warmup_epochs: int
    early_stopping_patience: int
    label_smoothing: float
    max_rotation_degrees: float
    max_zoom: float
    max_shift_pixels: float
    max_elastic_pixels: float
    max_stroke_width_change: float
    redrawn_share: float
    redrawn_pen_widths: tuple[float, ...]
    include_validation: bool

    def __post_init__(self) -> None:
        renamed = " (`seed` is now called `tutorial`)" if self.model == "seed" else ""
        check(self.model in MODEL_NAMES, "train.model", f"one of: {', '.join(MODEL_NAMES)}{renamed}", self.model)
        check(
            len(self.compact_filters) >= 2,
            "train.compact_filters",
            "a list of at least 2 filter counts (the compact model's two stride-2 convolutions, then any more)",
            list(self.compact_filters),
        )
        check_each(
            self.compact_filters,
            lambda filters: 1 <= filters <= MAX_FILTERS,
            "train.compact_filters",
            f"a list of integers in [1, {MAX_FILTERS}]",
        )
        check(self.random_seed >= 0, "train.random_seed", "a non-negative integer", self.random_seed)
        check(self.epochs >= 1, "train.epochs", "a positive integer", self.epochs)
        check(self.batch_size >= 1, "train.batch_size", "a positive integer", self.batch_size)
        check(0.0 < self.learning_rate <= 1.0, "train.learning_rate", "a number in (0, 1]", self.learning_rate)
        check(self.schedule in SCHEDULES, "train.schedule", f"one of: {', '.join(SCHEDULES)}", self.schedule)
        check(
            0 <= self.warmup_epochs < self.epochs,
            "train.warmup_epochs",
            "a non-negative integer smaller than train.epochs",
            self.warmup_epochs,
        )
        check(
            self.early_stopping_patience >= 0,
            "train.early_stopping_patience",
            "0 (off) or a positive integer",
            self.early_stopping_patience,
        )
        check(0.0 <= self.label_smoothing < 1.0, "train.label_smoothing", "a number in [0, 1)", self.label_smoothing)
        check(
            0.0 <= self.max_rotation_degrees <= 180.0,
            "train.max_rotation_degrees",
            "a number of degrees in [0, 180]",
            self.max_rotation_degrees,
        )
        check(0.0 <= self.max_zoom < 1.0, "train.max_zoom", "a fraction in [0, 1)", self.max_zoom)
        check(
            0.0 <= self.max_shift_pixels <= 14.0,
            "train.max_shift_pixels",
            "a number of pixels in [0, 14]",
            self.max_shift_pixels,
        )
        check(
            0.0 <= self.max_elastic_pixels <= 5.0,
            "train.max_elastic_pixels",
            "a number of pixels in [0, 5]",
            self.max_elastic_pixels,
        )
        check(
            0.0 <= self.max_stroke_width_change <= 2.0,
            "train.max_stroke_width_change",
            "a number of pixels in [0, 2]",
            self.max_stroke_width_change,
        )
        check(0.0 <= self.redrawn_share <= 1.0, "train.redrawn_share", "a fraction in [0, 1]", self.redrawn_share)
        widths = self.redrawn_pen_widths
        check(
            len(widths) == 2 and 0.5 <= widths[0] <= widths[1] <= MAX_PEN_WIDTH,
            "train.redrawn_pen_widths",
            f"[narrowest, widest]: two pen widths in pixels, 0.5 <= narrowest <= widest <= {MAX_PEN_WIDTH}",
            list(widths),
        )
        check(
            not (self.include_validation and self.early_stopping_patience),
            "train.early_stopping_patience",
            "0 when train.include_validation is true (early stopping watches the validation loss, and then "
            "there is none)",
            self.early_stopping_patience,
        )
