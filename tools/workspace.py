"""A temporary copy of the pipeline in its own git + DVC repository, and running DVC in it.

Used by the integration tests, the reproducibility gate and the benchmark, so that each runs the real
`dvc repro` on the project's real code without touching the checkout it runs from.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PIPELINE_FILES = (
    "stages",
    "mnist_dvc",
    ".dvc/config",
    ".dvc/plots_template.html",
    ".dvc/.gitignore",
    ".dvcignore",
    ".gitignore",
    "dvc.yaml",
    "params.yaml",
    # Not an output: the validation figures of the runs that chose the default recipe (dvc.yaml lists it).
    "bench/recipe_validation.json",
    "data/external/README.md",
    "data/external/.gitignore",
    "data/own_digits",
)
ALL_STAGES = ("fetch", "preprocess", "train", "evaluate", "predict", "export")
# A few hundred images and one epoch: every stage runs for real, in about half a minute in all. One
# TensorFlow thread: tensors this small gain nothing from a second one, and the test suite runs two
# pipelines at once on two cores (and DVC's experiment queue two workers) without them fighting.
SMALL_PROFILE = {
    "fetch": {"max_train_images": 600, "max_test_images": 200},
    "compute": {"threads": 1},
    "train": {"epochs": 1, "warmup_epochs": 0, "batch_size": 32},
    # A one-epoch model on 600 images is barely trained (about 20% on 200 test images): quantising it moves
    # many near-ties, so its int8 check only catches a broken conversion; the default bounds are for real models.
    "export": {"calibration_images": 100, "min_float_label_agreement": 0.99, "max_int8_accuracy_change": 0.25},
}


class CommandFailed(RuntimeError):
    """A command run in a workspace exited non-zero; the message holds its output."""


@dataclasses.dataclass(frozen=True)
class Machine:
    """What a run may see of the machine: extra environment variables and the CPUs it may use (None: all)."""

    environment: tuple[tuple[str, str], ...] = ()
    cpus: frozenset[int] | None = None

    def describe(self) -> str:
        parts = [f"{name}={value}" for name, value in self.environment]
        if self.cpus is not None:
            parts.append(f"CPU affinity {sorted(self.cpus)}")
        return ", ".join(parts) or "this machine as it is"


THIS_MACHINE = Machine()


def run(command: list[str], cwd: Path, machine: Machine = THIS_MACHINE) -> str:
    """Run `command` in `cwd` with this interpreter's environment first on PATH; return its output."""
    # DVC runs each stage's `python` through the shell: make it this interpreter.
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        **dict(machine.environment),
    }
    cpus = machine.cpus
    result = subprocess.run(
        command,
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus is not None else None,
    )
    if result.returncode != 0:
        raise CommandFailed(f"{' '.join(command)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


def dvc(repo: Path, *arguments: str, machine: Machine = THIS_MACHINE) -> str:
    return run([str(Path(sys.executable).parent / "dvc"), *arguments], repo, machine)


def stages_run(output: str) -> list[str]:
    """The stages a `dvc repro` output says it ran, in pipeline order."""
    return [stage for stage in ALL_STAGES if f"Running stage '{stage}'" in output]


def set_params(repo: Path, changes: dict[str, dict[str, object]]) -> None:
    """Update keys of `params.yaml` in `repo`, section by section."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in changes.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(
        [
            "git",
            "-c",
            "user.name=pipeline",
            "-c",
            "user.email=pipeline@localhost",
            "commit",
            "-qm",
            message,
            "--allow-empty",
        ],
        repo,
    )


def make_workspace(
    root: Path, params: dict[str, dict[str, object]] | None = None, source_root: Path = PROJECT_ROOT
) -> Path:
    """Copy the pipeline of `source_root` into `root` (a new git repository, no DVC cache), apply `params`, commit.

    The workspace's DVC cache (and with it the run-cache) is its own `.dvc/cache`, whatever cache a
    global or system DVC config names, so that a run in it computes every stage instead of restoring one;
    its `local` remote is the folder `<root>-remote` beside it, not this machine's shared one.
    """
    for name in PIPELINE_FILES:
        source, target = source_root / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    # Relative to the .dvc folder; config.local is git-ignored, so it stays out of the commit below. The
    # machine's own remote (~/.cache/mnist-dvc/remote in .dvc/config) becomes a folder beside the workspace.
    (root / ".dvc/config.local").write_text(
        f"[cache]\n    dir = cache\n['remote \"local\"']\n    url = {root.parent / (root.name + '-remote')}\n"
    )
    if params:
        set_params(root, params)
    run(["git", "init", "-q"], root)
    commit(root, "pipeline")
    return root
