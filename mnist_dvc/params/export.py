"""The `export` section of params.yaml: its keys, types and ranges."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mnist_dvc.params.loading import check


@dataclasses.dataclass(frozen=True)
class ExportParams:
    """The `export` section of params.yaml."""

    SECTION: ClassVar[str] = "export"
    calibration_images: int
    min_float_label_agreement: float
    max_int8_accuracy_change: float
    batch_size: int

    def __post_init__(self) -> None:
        check(self.calibration_images >= 1, "export.calibration_images", "a positive integer", self.calibration_images)
        check(
            0.0 <= self.min_float_label_agreement <= 1.0,
            "export.min_float_label_agreement",
            "a fraction from 0 to 1",
            self.min_float_label_agreement,
        )
        check(
            0.0 <= self.max_int8_accuracy_change <= 1.0,
            "export.max_int8_accuracy_change",
            "a fraction from 0 to 1 (0.001 = 0.1 points)",
            self.max_int8_accuracy_change,
        )
        check(self.batch_size >= 1, "export.batch_size", "a positive integer", self.batch_size)
