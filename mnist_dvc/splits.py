"""Stratified splitting, shared by fetch (Kaggle's labelled hold-out) and preprocess (validation)."""

from __future__ import annotations

import numpy as np

from mnist_dvc.errors import PipelineError


def stratified_split(labels: np.ndarray, fraction: float, random_seed: int, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out), each sorted, with every class split in the same proportion.

    Each class contributes round(fraction * class count) images to the held-out part, but never all of
    its images nor, when it has two or more, none. `key` names the params key in the error raised when
    nothing can be held out.
    """
    rng = np.random.default_rng(random_seed)
    kept_parts, held_out_parts = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = int(round(fraction * len(members)))
        count = min(max(count, 1 if len(members) >= 2 else 0), len(members) - 1)
        held_out_parts.append(members[:count])
        kept_parts.append(members[count:])
    kept = np.sort(np.concatenate(kept_parts)) if kept_parts else np.zeros(0, dtype=np.int64)
    held_out = np.sort(np.concatenate(held_out_parts)) if held_out_parts else np.zeros(0, dtype=np.int64)
    if len(held_out) == 0:
        raise PipelineError(
            f"{key}={fraction}: expected at least one image to hold out. "
            f"Received: {len(labels)} labelled images, too few to split"
        )
    return kept, held_out
