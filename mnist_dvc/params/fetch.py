"""The `fetch` section of params.yaml: its keys, types and ranges."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mnist_dvc.params.loading import check, check_each
from mnist_dvc.sources.download import redact_credentials

SOURCES = ("bundled", "url", "kaggle", "idx")


@dataclasses.dataclass(frozen=True)
class FetchParams:
    """The `fetch` section of params.yaml."""

    SECTION: ClassVar[str] = "fetch"
    source: str
    local_path: str
    mirrors: tuple[str, ...]
    timeout_seconds: float
    retries: int
    kaggle_holdout_size: float
    kaggle_holdout_seed: int
    max_train_images: int
    max_test_images: int

    def __post_init__(self) -> None:
        check(self.source in SOURCES, "fetch.source", f"one of: {', '.join(SOURCES)}", self.source)
        check(bool(self.local_path.strip()), "fetch.local_path", "a path to a folder or file", self.local_path)
        check_each(
            tuple(map(redact_credentials, self.mirrors)),
            lambda url: url.startswith(("http://", "https://")),
            "fetch.mirrors",
            "a list of http:// or https:// URLs",
        )
        check(
            self.source != "url" or bool(self.mirrors),
            "fetch.mirrors",
            "at least one mirror URL when fetch.source is url",
            list(self.mirrors),
        )
        check(
            0.0 < self.timeout_seconds <= 3600.0,
            "fetch.timeout_seconds",
            "a number of seconds in (0, 3600]",
            self.timeout_seconds,
        )
        check(0 <= self.retries <= 10, "fetch.retries", "an integer from 0 to 10", self.retries)
        check(
            0.0 < self.kaggle_holdout_size < 1.0,
            "fetch.kaggle_holdout_size",
            "a fraction strictly between 0 and 1",
            self.kaggle_holdout_size,
        )
        check(
            self.kaggle_holdout_seed >= 0,
            "fetch.kaggle_holdout_seed",
            "a non-negative integer",
            self.kaggle_holdout_seed,
        )
        check(
            self.max_train_images >= 0, "fetch.max_train_images", "0 (all) or a positive integer", self.max_train_images
        )
        check(self.max_test_images >= 0, "fetch.max_test_images", "0 (all) or a positive integer", self.max_test_images)
