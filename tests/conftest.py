"""Shared fixtures: tiny seeded synthetic data, so unit tests never need the real MNIST."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# The fuzzing properties' budgets (tests/test_fuzz.py). "ci" (the default, for `make test`): few examples,
# the same ones every run, nothing saved; "fuzz" (`make fuzz`): many random ones, failures kept in
# .hypothesis/ and replayed first next time.
_SLOW_EXAMPLES = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
settings.register_profile("ci", max_examples=40, derandomize=True, database=None, deadline=None,
                          suppress_health_check=_SLOW_EXAMPLES, print_blob=True)
settings.register_profile("fuzz", max_examples=2000, deadline=None, suppress_health_check=_SLOW_EXAMPLES,
                          print_blob=True)
settings.load_profile(os.environ.get("MNIST_FUZZ_PROFILE", "ci"))

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def small_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC repository of the project on the small profile after one full `dvc repro`, committed.

    Shared by the tests that only read it; a test that changes it works on a copy.
    """
    from tools.workspace import ALL_STAGES, SMALL_PROFILE, commit, dvc, make_workspace, stages_run

    root = make_workspace(tmp_path_factory.mktemp("small_pipeline"), SMALL_PROFILE)
    output = dvc(root, "repro")
    assert stages_run(output) == list(ALL_STAGES)
    commit(root, "dvc repro")
    return root


def synthetic_digits(per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (10 * per_class, 28, 28) with a class-dependent bright bar, and uint8 labels 0-9."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
    images = rng.integers(0, 40, size=(len(labels), 28, 28), dtype=np.uint8)
    for index, label in enumerate(labels):
        images[index, 2 + 2 * label : 4 + 2 * label, 4:24] = 255
    return images, labels


@pytest.fixture
def digits() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_digits(per_class=6)
