"""The `preprocess` section of params.yaml: its keys, types and ranges."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mnist_dvc.params.loading import check


@dataclasses.dataclass(frozen=True)
class PreprocessParams:
    """The `preprocess` section of params.yaml."""

    SECTION: ClassVar[str] = "preprocess"
    validation_size: float
    random_seed: int

    def __post_init__(self) -> None:
        check(
            0.0 < self.validation_size < 1.0,
            "preprocess.validation_size",
            "a fraction strictly between 0 and 1",
            self.validation_size,
        )
        check(self.random_seed >= 0, "preprocess.random_seed", "a non-negative integer", self.random_seed)
