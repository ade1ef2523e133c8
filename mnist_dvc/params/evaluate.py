"""The `evaluate` section of params.yaml: its keys, types and ranges."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mnist_dvc.params.loading import check


@dataclasses.dataclass(frozen=True)
class EvaluateParams:
    """The `evaluate` section of params.yaml."""

    SECTION: ClassVar[str] = "evaluate"
    batch_size: int
    max_misclassified_shown: int

    def __post_init__(self) -> None:
        check(self.batch_size >= 1, "evaluate.batch_size", "a positive integer", self.batch_size)
        check(
            self.max_misclassified_shown >= 0,
            "evaluate.max_misclassified_shown",
            "a non-negative integer",
            self.max_misclassified_shown,
        )
