"""Side-by-side benchmark: the tutorial's recipe and ours, each a full `dvc repro` with an empty cache.

For each recipe it measures, in one process on one machine: end-to-end `dvc repro` time, training time
and training images/s, test accuracy, inference images/s at batch 1 and batch 1,024 (Keras and
LiteRT, see bench/inference.py), and training throughput as a fraction of the CPU's measured fp32 peak
(a large square matmul); and for the files of its export stage (ONNX, float and int8 LiteRT) their
sizes, the test accuracy the stage recorded and their images/s at batch 1 and 1,024. It writes
`bench/results.md` and prints it.

    make bench                                        # both recipes, ours with 5 seeds (about 35 minutes on 2 cores)
    .venv/bin/python -m bench.compare --recipes ours  # one recipe
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.inference import exported_figures, exported_table, inference_rates
from tools.workspace import PROJECT_ROOT, dvc, make_workspace, set_params

# The tutorial's model and procedure, expressed as params of this pipeline (see the README).
TUTORIAL_PARAMS: dict[str, dict[str, object]] = {
    "preprocess": {"validation_size": 0.2},
    "train": {
        "model": "tutorial",
        "epochs": 100,
        "batch_size": 32,
        "learning_rate": 0.001,
        "schedule": "constant",
        "warmup_epochs": 0,
        "early_stopping_patience": 8,
        "label_smoothing": 0.0,
        "max_rotation_degrees": 0.0,
        "max_zoom": 0.0,
        "max_shift_pixels": 0.0,
        "max_elastic_pixels": 0.0,
        "max_stroke_width_change": 0.0,
        "redrawn_share": 0.0,  # the tutorial trains on MNIST's images alone
        "include_validation": False,  # early stopping watches the validation loss
    },
}
RECIPES = {"tutorial": TUTORIAL_PARAMS, "ours": {}}


def measure_fp32_peak(size: int = 4096, repeats: int = 5) -> float:
    """Best GFLOP/s of a float32 `size`x`size` matmul in TensorFlow, with this process's thread settings."""
    import tensorflow as tf

    a = tf.random.normal((size, size), seed=1)
    b = tf.random.normal((size, size), seed=2)
    tf.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        tf.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def forward_multiply_adds(model: Any) -> int:  # a keras.Model
    """Multiply-adds of one image's forward pass through the Conv2D and Dense layers."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            kernel_height, kernel_width = layer.kernel_size
            total += height * width * filters * kernel_height * kernel_width * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def run_recipe(workspace: Path) -> dict[str, float]:
    """Run `dvc repro` (a new repository, so no cache) and collect the figures."""
    started = time.perf_counter()
    output = dvc(workspace, "repro")
    wall = time.perf_counter() - started
    trained = re.search(r"trained in ([0-9.]+)s", output)
    train_seconds = float(trained.group(1)) if trained else float("nan")
    summary = json.loads((workspace / "metrics/train.json").read_text())
    accuracy = json.loads((workspace / "metrics/evaluate.json").read_text())["test"]["accuracy"]
    train_images = summary["training_images"]  # with train.include_validation, the validation images too
    return {
        "repro_seconds": wall,
        "train_seconds": train_seconds,
        "epochs": summary["epochs_run"],
        "train_images_per_second": train_images * summary["epochs_run"] / train_seconds,
        "test_accuracy": accuracy,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=["tutorial", "ours"])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results.md")
    parser.add_argument(
        "--more-seeds",
        type=int,
        nargs="*",
        default=[1, 2, 3, 4],
        metavar="SEED",
        help="train.random_seed values our recipe is also trained with, for its accuracy over "
        "seeds (about 5 minutes each; none: `--more-seeds`)",
    )
    args = parser.parse_args(argv)

    from mnist_dvc.model.architectures import configure_tensorflow
    from mnist_dvc.model.files import load_model
    from mnist_dvc.params.compute import ComputeParams

    configure_tensorflow(random_seed=0, compute=ComputeParams(portable_kernels=True, threads=0))
    peak = measure_fp32_peak()
    print(f"fp32 peak (4096^2 matmul): {peak:.1f} GFLOP/s", flush=True)
    rows: dict[str, dict[str, float]] = {}
    seeds: dict[int, float] = {}
    exported: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as parent:
        for name in args.recipes:
            print(f"running the {name} recipe ...", flush=True)
            workspace = make_workspace(Path(parent) / name, RECIPES[name])
            figures = run_recipe(workspace)
            model = load_model(workspace / "models/model.keras")
            images = np.load(workspace / "data/prepared/test_images.npy")
            macs = forward_multiply_adds(model)
            figures["multiply_adds"] = macs
            figures["peak_fraction"] = figures["train_images_per_second"] * 3 * 2 * macs / (peak * 1e9)
            figures.update(inference_rates(model, images))
            rows[name] = figures
            print(f"{name}: {json.dumps({k: round(v, 4) for k, v in figures.items()})}", flush=True)
            exported[name] = exported_figures(
                workspace / "models", json.loads((workspace / "metrics/export.json").read_text()), images
            )
            print(f"{name}, exported: {json.dumps(exported[name])}", flush=True)
            if name == "ours":
                seeds = seed_accuracies(workspace, figures["test_accuracy"], args.more_seeds)
    table = render(rows, peak)
    if "ours" in rows and len(seeds) > 1:
        table += "\n" + seeds_line(seeds) + "\n"
    table += "\nThe export stage's files (sizes, the test accuracy the stage recorded, speed):\n\n" + exported_table(
        exported, {name: figures["test_accuracy"] for name, figures in rows.items()}
    )
    args.out.write_text(table)
    print(table)
    return 0


def seed_accuracies(workspace: Path, default_accuracy: float, more_seeds: list[int]) -> dict[int, float]:
    """{train.random_seed: test accuracy} of our recipe: the default seed's run, then each of `more_seeds`
    trained in the same workspace (its data stages are up to date, so `dvc repro` reruns from train)."""
    default_seed = int(yaml.safe_load((workspace / "params.yaml").read_text())["train"]["random_seed"])
    accuracies = {default_seed: default_accuracy}
    for seed in more_seeds:
        print(f"training our recipe with train.random_seed={seed} ...", flush=True)
        set_params(workspace, {"train": {"random_seed": seed}})
        dvc(workspace, "repro")
        accuracies[seed] = json.loads((workspace / "metrics/evaluate.json").read_text())["test"]["accuracy"]
        print(f"seed {seed}: {accuracies[seed]}", flush=True)
    return accuracies


def seeds_line(accuracies: dict[int, float]) -> str:
    listed = ", ".join(f"{100 * accuracy:.2f}%" for _, accuracy in sorted(accuracies.items()))
    values = list(accuracies.values())
    return (
        f"Ours with `train.random_seed` {', '.join(str(seed) for seed in sorted(accuracies))}: {listed}; "
        f"mean **{100 * sum(values) / len(values):.2f}%**, lowest {100 * min(values):.2f}%."
    )


def render(rows: dict[str, dict[str, float]], peak: float) -> str:
    lines = [
        f"Measured by `make bench` on {os.cpu_count()} CPU cores; fp32 peak (4096² matmul) {peak:.0f} GFLOP/s.",
        "",
        "| recipe | `dvc repro` (s) | train (s) | epochs | train img/s | of fp32 peak | infer img/s, batch 1: "
        "Keras / LiteRT | infer img/s, batch 1024: Keras / LiteRT | M multiply-adds / image | test accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, f in rows.items():
        lines.append(
            f"| {name} | {f['repro_seconds']:.0f} | {f['train_seconds']:.0f} | {f['epochs']} | "
            f"{f['train_images_per_second']:.0f} | {100 * f['peak_fraction']:.0f}% | "
            f"{f['keras_batch_1']:.0f} / {f['litert_batch_1']:.0f} | {f['keras_batch_1024']:.0f} / "
            f"{f['litert_batch_1024']:.0f} | {f['multiply_adds'] / 1e6:.1f} | {100 * f['test_accuracy']:.2f}% |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
