"""An ensemble of our recipe: one model per `train.random_seed`, their test-set probabilities averaged.

    make ensemble                                               # seeds 0-4 (about 25 minutes on 2 cores)
    .venv/bin/python -m bench.ensemble --seeds 0 1 2 --set train.epochs=12

The members were fixed on validation before any ensemble's test score was looked at (docs/benchmark.md):
five seeds of the default recipe, the most whose training fits in 30 minutes here; on validation (the same
recipe trained on the training split alone, `python -m bench.accuracy_trials --ensemble --name epochs-16-p
--seeds 0 1 2 3 4`) five averaged score 99.57% against their mean 99.54%.

The members are trained by the pipeline itself: a copy of this repository's pipeline (its own git and
DVC repository, see `tools.workspace`) runs `dvc repro train` once per seed, so each member is exactly
the model `dvc exp run -S train.random_seed=N` would give. Each member's softmax outputs on the test
images are kept; the ensemble's prediction is their mean. It prints, and writes to `bench/ensemble.md`,
each seed's own test accuracy beside the ensemble's, and the ensemble's accuracy after each member is
added (how much the next member buys).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from mnist_dvc.atomic_files import write_text_atomically
from mnist_dvc.errors import ParamsError
from mnist_dvc.params.loading import parse_section, read_params_file
from tools.workspace import PROJECT_ROOT, dvc, make_workspace, set_params, stages_run


@dataclasses.dataclass(frozen=True)
class Member:
    """One trained member: its seed, its test probabilities (n, 10), the seconds its `dvc repro train` took, the
    md5 of its model file and whether that run trained (False: DVC found the model up to date)."""

    seed: int
    probabilities: np.ndarray
    seconds: float
    model_md5: str = ""
    trained: bool = True


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose largest probability is at the true label."""
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def running_accuracies(members: list[Member], labels: np.ndarray) -> list[float]:
    """Test accuracy of the mean of the first 1, 2, ... members' probabilities."""
    total = np.zeros_like(members[0].probabilities, dtype=np.float64)
    accuracies = []
    for count, member in enumerate(members, start=1):
        total += member.probabilities
        accuracies.append(accuracy(total / count, labels))
    return accuracies


def parse_setting(text: str) -> tuple[str, str, object]:
    """`section.key=value` (the value read as YAML, as `dvc exp run -S` does) to (section, key, value)."""
    name, separator, value = text.partition("=")
    section, dot, key = name.partition(".")
    if not separator or not dot or not section or not key:
        raise argparse.ArgumentTypeError(f"expected section.key=value (e.g. train.epochs=15), got {text!r}")
    return section, key, yaml.safe_load(value)


def check_settings(changes: dict[str, dict[str, object]]) -> None:
    """Validate params changes against the same schemas the stages load (`mnist_dvc.params.<section>`): the
    section, each key, its type and its range; raise ValueError naming the key."""
    document = read_params_file(PROJECT_ROOT / "params.yaml")
    for section, values in changes.items():
        try:
            module = importlib.import_module(f"mnist_dvc.params.{section}")
        except ModuleNotFoundError:
            raise ValueError(f"{section}: params.yaml has no such section") from None
        schema = next(value for value in vars(module).values() if getattr(value, "SECTION", None) == section)
        unknown = sorted(set(values) - {field.name for field in dataclasses.fields(schema)})
        if unknown:
            raise ValueError(f"{section}.{unknown[0]}: params.yaml has no such key")
        try:
            parse_section({section: {**document[section], **values}}, section, schema, "--set")
        except ParamsError as error:
            raise ValueError(str(error).removeprefix("--set: ")) from None


def train_member(workspace: Path, seed: int, test_images: np.ndarray) -> Member:
    """Train the workspace's recipe with `train.random_seed: seed` (`dvc repro train`); return its test
    probabilities."""
    from mnist_dvc.model.files import load_model

    set_params(workspace, {"train": {"random_seed": seed}})
    started = time.perf_counter()
    output = dvc(workspace, "repro", "train")
    seconds = time.perf_counter() - started
    model_path = workspace / "models/model.keras"
    probabilities = load_model(model_path).predict(test_images, batch_size=1024, verbose=0)
    model_md5 = hashlib.md5(model_path.read_bytes()).hexdigest()
    trained = "train" in stages_run(output)
    return Member(seed, np.asarray(probabilities, dtype=np.float32), seconds, model_md5, trained)


def train_ensemble(workspace: Path, seeds: list[int]) -> tuple[list[Member], np.ndarray]:
    """Train one member per seed in `workspace` (a pipeline repository), in order; return them and the test labels."""
    print("preparing the data (dvc repro preprocess) ...", flush=True)
    dvc(workspace, "repro", "preprocess")
    test_images = np.load(workspace / "data/prepared/test_images.npy")
    labels = np.load(workspace / "data/prepared/test_labels.npy")
    members: list[Member] = []
    for seed in seeds:
        print(f"training with train.random_seed={seed} ...", flush=True)
        members.append(train_member(workspace, seed, test_images))
        print(
            f"seed {seed}: {100 * accuracy(members[-1].probabilities, labels):.2f}% alone, "
            f"{100 * running_accuracies(members, labels)[-1]:.2f}% for the {len(members)} so far",
            flush=True,
        )
    return members, labels


def render(members: list[Member], labels: np.ndarray, settings: list[str], total_seconds: float) -> str:
    """The markdown table: per seed its own accuracy and the ensemble's so far, then the summary line."""
    running = running_accuracies(members, labels)
    own = [accuracy(member.probabilities, labels) for member in members]
    recipe = ", ".join(f"`{setting}`" for setting in settings) or "the default params"
    lines = [
        (
            f"Ensemble of {len(members)} models of our recipe ({recipe}), trained by `make ensemble` in "
            f"{total_seconds / 60:.1f} minutes on {len(os.sched_getaffinity(0))} CPU cores."
        ),
        "",
        "| member | `train.random_seed` | `dvc repro train` (s) | its test accuracy | ensemble so far |",
        "|---|---|---|---|---|",
    ]
    for index, (member, alone, together) in enumerate(zip(members, own, running, strict=True), start=1):
        lines.append(f"| {index} | {member.seed} | {member.seconds:.0f} | {100 * alone:.2f}% | {100 * together:.2f}% |")
    lines += [
        "",
        (
            f"Members' mean {100 * float(np.mean(own)):.2f}% (lowest {100 * min(own):.2f}%); "
            f"ensemble of all {len(members)}: **{100 * running[-1]:.2f}%**."
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(range(5)),
        metavar="SEED",
        help="train.random_seed of each member (about 5 minutes each here)",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        type=parse_setting,
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="a params change for every member (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "ensemble.md")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds must differ from each other, got {args.seeds}")
    changes: dict[str, dict[str, object]] = {}
    for section, key, value in args.settings:
        changes.setdefault(section, {})[key] = value
    try:
        check_settings(changes)
    except ValueError as error:
        parser.error(f"--set {error}")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mnist-ensemble-") as parent:
        members, labels = train_ensemble(make_workspace(Path(parent) / "ensemble", changes), args.seeds)
    table = render(members, labels, [f"{s}.{k}={v}" for s, k, v in args.settings], time.perf_counter() - started)
    write_text_atomically(args.out, table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
