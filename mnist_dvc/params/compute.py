"""The `compute` section of params.yaml: how TensorFlow computes (see mnist_dvc.reproducible_compute)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mnist_dvc.params.loading import check


@dataclasses.dataclass(frozen=True)
class ComputeParams:
    """The `compute` section of params.yaml, read by every stage that runs TensorFlow."""

    SECTION: ClassVar[str] = "compute"
    portable_kernels: bool
    threads: int

    def __post_init__(self) -> None:
        check(self.threads >= 0, "compute.threads", "0 (one per available CPU) or a positive integer", self.threads)
