"""The `predict` section of params.yaml: its keys, types and ranges."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mnist_dvc.params.loading import check


@dataclasses.dataclass(frozen=True)
class PredictParams:
    """The `predict` section of params.yaml."""

    SECTION: ClassVar[str] = "predict"
    batch_size: int
    samples_shown: int
    images: str

    def __post_init__(self) -> None:
        check(self.batch_size >= 1, "predict.batch_size", "a positive integer", self.batch_size)
        check(self.samples_shown >= 0, "predict.samples_shown", "a non-negative integer", self.samples_shown)
        check(bool(self.images.strip()), "predict.images", "a folder of image files", self.images)
