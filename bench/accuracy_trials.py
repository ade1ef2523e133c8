"""Validation trials of training recipes (issue 26): each recipe trained with several seeds, scored on the
validation split only, with its training time. The official test set is not read here.

Each trial is one training run in its own process (TensorFlow's settings are per process), appended as a JSON
line to bench/accuracy_trials.jsonl; `--table` summarises the file as bench/accuracy_trials.md.

Besides the plain validation accuracy, every run also records, at no training cost:
  - test-time augmentation: the mean probabilities of the image and shifted copies of it
    (`tta5`: 1 pixel up, down, left, right; `tta9`: also the diagonals);
  - with `--ema M`, the accuracy of the exponential moving average of the weights (momentum M) that
    Keras's optimiser keeps, beside that of the final weights.

    .venv/bin/python -m bench.accuracy_trials --name elastic-2 --seeds 0 1 2 -S train.max_elastic_pixels=2
    .venv/bin/python -m bench.accuracy_trials --name wider --seeds 0 1 2 -S 'train.compact_filters=[32, 72, 72, 72]'
    .venv/bin/python -m bench.accuracy_trials --table
    .venv/bin/python -m bench.accuracy_trials --record epochs-16-p   # the chosen recipe's validation figures

`--save-models` also keeps each trained model (bench/work/trial_models/NAME-seedN.keras), to score it later on
other sets of validation digits (e.g. redrawn by `mnist_dvc/own_digits/rendering.py`).

`--record NAME` writes NAME's runs as bench/recipe_validation.json, which `dvc metrics show` lists: the
default recipe's final model trains on the validation images too (`train.include_validation`), so the
validation figures that chose it are these runs', on the training split alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench/accuracy_trials.jsonl"
TABLE = ROOT / "bench/accuracy_trials.md"
RECIPE_VALIDATION = ROOT / "bench/recipe_validation.json"
# Each run's validation probabilities (plain, final weights), for ensembles chosen on validation (`--ensemble`).
PROBABILITIES = ROOT / "bench/work/trial_probabilities"
# With `--save-models`, each run's trained model, to score on other validation-digit sets later.
MODELS = ROOT / "bench/work/trial_models"
TTA_SHIFTS = {
    "tta5": [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)],
    "tta9": [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)],
}


def shifted(images: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """Images (n, 28, 28, 1) moved by whole pixels, the uncovered edge filled with 0 (no ink)."""
    out = np.zeros_like(images)
    height, width = images.shape[1:3]
    source_rows = slice(max(0, -rows), height - max(0, rows))
    target_rows = slice(max(0, rows), height - max(0, -rows))
    source_columns = slice(max(0, -columns), width - max(0, columns))
    target_columns = slice(max(0, columns), width - max(0, -columns))
    out[:, target_rows, target_columns] = images[:, source_rows, source_columns]
    return out


def scores(model: Any, images: np.ndarray, labels: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """Validation accuracy, plain and with each set of shifted views averaged; and the plain probabilities."""
    by_shift = {
        shift: model.predict(shifted(images, *shift), batch_size=1024, verbose=0) for shift in TTA_SHIFTS["tta9"]
    }
    result = {"plain": float(np.mean(by_shift[(0, 0)].argmax(axis=1) == labels))}
    for name, shifts in TTA_SHIFTS.items():
        mean = np.mean([by_shift[shift] for shift in shifts], axis=0)
        result[name] = float(np.mean(mean.argmax(axis=1) == labels))
    return result, by_shift[(0, 0)]


def probabilities_path(name: str, seed: int) -> Path:
    return PROBABILITIES / f"{name}-seed{seed}.npy"


def ensemble_curve(name: str, seeds: list[int], labels: np.ndarray) -> list[tuple[int, float, float]]:
    """(seed, its validation accuracy, accuracy of the mean probabilities of it and the seeds before it)."""
    total = np.zeros((len(labels), 10))
    curve = []
    for seed in seeds:
        member = np.load(probabilities_path(name, seed))
        total += member
        curve.append(
            (seed, float(np.mean(member.argmax(axis=1) == labels)), float(np.mean(total.argmax(axis=1) == labels)))
        )
    return curve


def run_one(
    name: str, seed: int, overrides: dict[str, Any], ema: float, train_images: int, save_model: bool = False
) -> dict[str, Any]:
    import keras

    from mnist_dvc.formats.prepared_arrays import read_prepared
    from mnist_dvc.model.architectures import configure_tensorflow
    from mnist_dvc.params.compute import ComputeParams
    from mnist_dvc.params.loading import load_section
    from mnist_dvc.params.train import TrainParams
    from mnist_dvc.training import build_model, compile_model, fit

    params = load_section(ROOT / "params.yaml", TrainParams.SECTION, TrainParams)
    params = dataclasses.replace(params, random_seed=seed, **overrides)
    configure_tensorflow(seed, load_section(ROOT / "params.yaml", ComputeParams.SECTION, ComputeParams))
    train = read_prepared(ROOT / "data/prepared", "train")
    val = read_prepared(ROOT / "data/prepared", "val")
    train_x, train_y = train.images, train.labels
    if train_images:
        train_x, train_y = train_x[:train_images], train_y[:train_images]
    model = build_model(params)
    steps_per_epoch = -(-len(train_y) // params.batch_size)
    compile_model(model, params, steps_per_epoch)
    if ema:
        model.optimizer.use_ema = True
        model.optimizer.ema_momentum = ema
        model.optimizer.ema_overwrite_frequency = None
    started = time.perf_counter()
    history = fit(model, train_x, train_y, val, params, [])
    seconds = time.perf_counter() - started
    # With use_ema, fit ends by writing the average into the weights; the last epoch's own weights scored
    # in `history` (val_accuracy is computed on them, before the swap).
    record: dict[str, Any] = {
        "name": name,
        "seed": seed,
        "overrides": overrides,
        "ema": ema,
        "train_images": len(train_y),
        "train_seconds": round(seconds, 1),
        "final_weights_val_accuracy": round(float(history["val_accuracy"][-1]), 6),
    }
    accuracies, probabilities = scores(model, val.images, val.labels)
    record.update({f"val_{key}": round(value, 6) for key, value in accuracies.items()})
    PROBABILITIES.mkdir(parents=True, exist_ok=True)
    np.save(probabilities_path(name, seed), probabilities)
    if save_model:
        from mnist_dvc.model.files import save_model as save_model_file

        MODELS.mkdir(parents=True, exist_ok=True)
        save_model_file(model, MODELS / f"{name}-seed{seed}.keras")
    keras.backend.clear_session()
    return record


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    overrides = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        section, _, field = key.partition(".")
        if section != "train" or not field:
            raise SystemExit(f"-S {pair}: expected train.KEY=VALUE")
        overrides[field] = yaml.safe_load(value)
    return overrides


def table(records: list[dict[str, Any]]) -> str:
    names = list(dict.fromkeys(record["name"] for record in records))
    lines = [
        "Validation accuracy (5,999 images) of each recipe, per train seed; measured by"
        " `python -m bench.accuracy_trials` on 2 CPU cores. Test-time augmentation (TTA) columns average the"
        " probabilities of shifted copies.",
        "",
        "| recipe | train params changed | seeds | val accuracy: mean (min-max) | with TTA-5 | with TTA-9 "
        "| train s (mean) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        runs = [record for record in records if record["name"] == name]
        first = runs[0]
        changes = ", ".join(f"{key}={value}" for key, value in first["overrides"].items()) or "none"
        if first["ema"]:
            changes += f", weight EMA {first['ema']}"
        if first["train_images"] != 54001:
            changes += f", first {first['train_images']} training images"

        def summary(key: str, runs: list[dict[str, Any]] = runs) -> str:
            values = np.array([run[key] for run in runs]) * 100
            return f"{values.mean():.2f}% ({values.min():.2f}-{values.max():.2f})"

        seeds = ",".join(str(run["seed"]) for run in runs)
        seconds = np.mean([run["train_seconds"] for run in runs])
        lines.append(
            f"| {name} | {changes} | {seeds} | {summary('val_plain')} | {summary('val_tta5')} | {summary('val_tta9')} "
            f"| {seconds:.0f} |"
        )
        if first["ema"]:
            lines.append(
                f"| {name} (final weights, no EMA) | | {seeds} | {summary('final_weights_val_accuracy')} | | | |"
            )
    return "\n".join(lines) + "\n"


def recipe_validation(name: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The validation figures of recipe `name`'s runs, for bench/recipe_validation.json."""
    runs = [record for record in records if record["name"] == name]
    if not runs:
        raise SystemExit(f"{RESULTS}: expected runs of the recipe {name!r}. Received: none")
    accuracies = [run["val_plain"] for run in runs]
    return {
        "recipe": name,
        "overrides": runs[0]["overrides"],
        "seeds": [run["seed"] for run in runs],
        "training_images": runs[0]["train_images"],
        "val_accuracy_mean": round(float(np.mean(accuracies)), 6),
        "val_accuracy_min": round(min(accuracies), 6),
        "val_accuracy_max": round(max(accuracies), 6),
        "measured_by": "python -m bench.accuracy_trials (bench/accuracy_trials.md)",
    }


def read_records() -> list[dict[str, Any]]:
    """Every run recorded in bench/accuracy_trials.jsonl, in order."""
    return [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("-S", dest="overrides", action="append", default=[], help="train.KEY=VALUE")
    parser.add_argument("--ema", type=float, default=0.0, help="also keep a weight EMA of this momentum")
    parser.add_argument("--train-images", type=int, default=0, help="train on the first N images only")
    parser.add_argument(
        "--save-models", action="store_true", help=f"keep each trained model in {MODELS.relative_to(ROOT)}"
    )
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--record", metavar="NAME", help="write NAME's runs as bench/recipe_validation.json")
    parser.add_argument(
        "--ensemble", action="store_true", help="print the validation accuracy of --name's --seeds averaged in order"
    )
    args = parser.parse_args(argv)
    if args.ensemble:
        from mnist_dvc.formats.prepared_arrays import read_prepared

        labels = read_prepared(ROOT / "data/prepared", "val").labels
        print(f"{args.name}: member seed, its val accuracy, val accuracy of the members so far averaged")
        for seed, alone, together in ensemble_curve(args.name, args.seeds, labels):
            print(f"  {seed}  {alone * 100:.2f}%  {together * 100:.2f}%")
        return 0
    if args.record:
        records = read_records()
        text = json.dumps(recipe_validation(args.record, records), indent=2) + "\n"
        RECIPE_VALIDATION.write_text(text)
        print(text)
        return 0
    if args.table:
        records = read_records()
        text = table(records)
        TABLE.write_text(text)
        print(text)
        return 0
    if not args.name:
        parser.error("--name is required")
    overrides = parse_overrides(args.overrides)
    if args.one:
        record = run_one(args.name, args.seeds[0], overrides, args.ema, args.train_images, args.save_models)
        with RESULTS.open("a") as results:
            results.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)
        return 0
    for seed in args.seeds:
        command = [sys.executable, "-m", "bench.accuracy_trials", "--one", "--name", args.name, "--seeds", str(seed)]
        command += [f"-S{pair}" for pair in args.overrides]
        command += ["--ema", str(args.ema), "--train-images", str(args.train_images)]
        command += ["--save-models"] if args.save_models else []
        subprocess.run(command, check=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
