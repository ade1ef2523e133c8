"""Shared fixtures: tiny seeded synthetic data, so unit tests never need the real MNIST."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

from mnist_dvc.process_setup import prepare_tensorflow_environment

# The fuzzing properties' budgets (tests/test_fuzz.py). "ci" (the default, for `make test`): few examples,
# the same ones every run, nothing saved; "fuzz" (`make fuzz`): many random ones, failures kept in
# .hypothesis/ and replayed first next time.
_SLOW_EXAMPLES = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
settings.register_profile(
    "ci",
    max_examples=40,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=_SLOW_EXAMPLES,
    print_blob=True,
)
settings.register_profile(
    "fuzz", max_examples=2000, deadline=None, suppress_health_check=_SLOW_EXAMPLES, print_blob=True
)
_FUZZ_PROFILE = os.environ.get("MNIST_FUZZ_PROFILE", "ci")
settings.load_profile(_FUZZ_PROFILE)

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# The test process's own start-up, as a stage process has it (stages/__init__.py): TensorFlow's variables
# before any test imports it.
prepare_tensorflow_environment()


# Where the session's small-profile repository is built: a folder every pytest-xdist worker's temporary
# folder lies in (the controller's), or this process's own without xdist.
_SMALL_PIPELINE_FOLDER = "small_pipeline_built"


@pytest.hookimpl(trylast=True)  # after pytest's own, which sets up its temporary folders
def pytest_configure(config: pytest.Config) -> None:
    """In the controller of a pytest-xdist run, start building the small-profile repository in the
    background, so that no worker waits for it (a worker needing it before it is done waits for the lock)."""
    # Hypothesis keeps a cache of constants (and, in the "fuzz" profile, its example database) in .hypothesis/:
    # in the "ci" profile, under this session's own temporary folder, so that a test run writes nothing
    # in the checkout (`make fuzz` keeps its failures in .hypothesis/ on purpose, to replay them).
    if _FUZZ_PROFILE == "ci":
        set_hypothesis_home_dir(str(config._tmp_path_factory.getbasetemp() / "hypothesis"))
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        return
    folder = config._tmp_path_factory.getbasetemp() / _SMALL_PIPELINE_FOLDER  # pytest's own temporary root
    folder.mkdir(parents=True, exist_ok=True)
    with (folder.parent / "small_pipeline_build.log").open("w") as log:
        config._small_pipeline_build = subprocess.Popen(
            [sys.executable, "-m", "tests.small_pipeline", str(folder)],
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    build = getattr(config, "_small_pipeline_build", None)
    if build is not None and build.poll() is None:
        build.kill()
        build.wait()


@pytest.fixture(scope="session")
def small_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC repository of the project on the small profile after one full `dvc repro`, committed.

    Built once per test session (tests/small_pipeline.py); each worker gets its own copy (DVC cache and
    run-cache included), so that no two workers' DVC commands meet in one repository. Shared by the
    tests of a worker that only read it; a test that changes it works on a copy.
    """
    from tests.small_pipeline import ensure_built

    own_folder = tmp_path_factory.getbasetemp()
    shared_folder = own_folder.parent if os.environ.get("PYTEST_XDIST_WORKER") else own_folder
    built = ensure_built(shared_folder / _SMALL_PIPELINE_FOLDER)
    return Path(shutil.copytree(built, tmp_path_factory.mktemp("small_pipeline") / "repo", symlinks=True))


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


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """One worker more than this process's CPUs (at most 4): the slow tests spend part of their time waiting
    on DVC's and git's subprocesses, and a third worker on 2 cores fills that time (measured on 2 cores:
    pytest 392 s with 3 workers against 496 s with 2)."""
    return min(4, len(os.sched_getaffinity(0)) + 1)


@pytest.fixture(scope="session")
def web_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LiteRT model that reads real digits (tests/web_model.py), trained once per test session."""
    from tests.web_model import ensure_trained

    own_folder = tmp_path_factory.getbasetemp()
    shared_folder = own_folder.parent if os.environ.get("PYTEST_XDIST_WORKER") else own_folder
    return ensure_trained(shared_folder / "web_model")


def ring(side: int, outer: float, inner: float) -> np.ndarray:
    """A boolean side x side drawing of a ring around the middle: radius from `inner` up to `outer` pixels."""
    rows, columns = np.indices((side, side))
    radius = np.hypot(rows - side / 2, columns - side / 2)
    drawn: np.ndarray = (radius < outer) & (radius >= inner)
    return drawn
