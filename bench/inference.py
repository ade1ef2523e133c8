"""Inference speed of the model, Keras and LiteRT side by side, at batch 1 and batch 1,024.

    .venv/bin/python -m bench.inference [--model models/model.keras]

Measures, on this machine, images/s of the committed model (its trained weights) and of the tutorial's
architecture (fresh weights: speed does not depend on their values) through a compiled Keras call
(`tf.function`) and through LiteRT (`mnist_dvc.model.serving`), and how far LiteRT's probabilities are
from Keras's on the test images (labels that differ, largest difference). `bench/compare.py` (`make bench`)
reports the same rates for each recipe it trains. Then the same for the files of the export stage
(ONNX through onnxruntime, float and int8 LiteRT), with their sizes and the test accuracy the stage recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tools.workspace import PROJECT_ROOT

BATCH_SIZES = (1, 1024)


def images_per_second(
    predict: Callable[[np.ndarray], object], images: np.ndarray, batch_size: int, seconds: float = 5.0
) -> float:
    """Images/s of `predict` on consecutive batches of `batch_size` test images, timed for about `seconds`."""
    batches = [images[start : start + batch_size] for start in range(0, len(images) - batch_size + 1, batch_size)]
    predict(batches[0])  # the first call compiles or plans
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        predict(batches[calls % len(batches)])
        calls += 1
    return calls * batch_size / (time.perf_counter() - started)


def threads_for(batch_size: int) -> int:
    """LiteRT's and onnxruntime's threads: one for one image (a second only adds hand-over: 5,500 against
    4,500 images/s here), every CPU for large batches, as Keras's compute.threads does."""
    return 1 if batch_size == 1 else len(os.sched_getaffinity(0))


def keras_forward(model: Any) -> Callable[[np.ndarray], np.ndarray]:  # a keras.Model
    """A compiled forward pass of the Keras model, as a service would call it (no `model.predict` loop)."""
    import tensorflow as tf

    forward = tf.function(lambda batch: model(batch, training=False))
    return lambda batch: forward(tf.constant(batch, dtype=tf.float32)).numpy()


def inference_rates(model: Any, images: np.ndarray, flatbuffer: bytes | None = None) -> dict[str, float]:
    """{"keras_batch_1": images/s, ..., "litert_batch_1024": images/s} for `model` on `images` (n, 28, 28, 1);
    `flatbuffer` is the model's LiteRT form if the caller already has it."""
    from mnist_dvc.model.export import to_litert
    from mnist_dvc.model.serving import LiteRTPredictor

    pixels = images.astype(np.float32)
    forward, flatbuffer = keras_forward(model), flatbuffer or to_litert(model)
    runners: dict[str, dict[int, Callable[[np.ndarray], np.ndarray]]] = {
        "keras": {size: forward for size in BATCH_SIZES},
        "litert": {size: LiteRTPredictor(flatbuffer, threads_for(size)).predict for size in BATCH_SIZES},
    }
    return {
        f"{name}_batch_{size}": images_per_second(runs[size], pixels, size)
        for name, runs in runners.items()
        for size in BATCH_SIZES
    }


EXPORTED_FORMATS = {
    "onnx": ("ONNX (onnxruntime)", "model.onnx"),
    "litert": ("LiteRT float32", "model.tflite"),
    "litert_int8": ("LiteRT int8", "model_int8.tflite"),
}


def exported_figures(models_dir: Path, summary: dict[str, Any], images: np.ndarray) -> dict[str, dict[str, float]]:
    """For each format the export stage wrote into `models_dir`: its size, the test accuracy and agreement
    the stage recorded (`summary`, metrics/export.json), and its images/s at batch 1 and 1,024."""
    from mnist_dvc.model.serving import LiteRTPredictor, OnnxPredictor

    pixels = images.astype(np.float32)
    figures = {}
    for key, (_, file_name) in EXPORTED_FORMATS.items():
        content = (models_dir / file_name).read_bytes()
        predictor = OnnxPredictor if key == "onnx" else LiteRTPredictor
        rates = {
            f"batch_{size}": images_per_second(predictor(content, threads_for(size)).predict, pixels, size)
            for size in BATCH_SIZES
        }
        figures[key] = {
            "bytes": len(content),
            "test_accuracy": summary[key]["test_accuracy"],
            "label_agreement": summary[key]["label_agreement"],
            **rates,
        }
    return figures


def exported_table(rows: dict[str, dict[str, dict[str, float]]], keras_accuracy: dict[str, float]) -> str:
    """Markdown: one row per recipe and exported format."""
    lines = [
        "| recipe | format | size (KB) | test accuracy (Keras) | same label as Keras | img/s, batch 1 | "
        "img/s, batch 1024 |",
        "|---|---|---|---|---|---|---|",
    ]
    for recipe, formats in rows.items():
        for key, f in formats.items():
            lines.append(
                f"| {recipe} | {EXPORTED_FORMATS[key][0]} | {f['bytes'] / 1000:.0f} | "
                f"{100 * f['test_accuracy']:.2f}% ({100 * keras_accuracy[recipe]:.2f}%) | "
                f"{100 * f['label_agreement']:.2f}% | {f['batch_1']:.0f} | {f['batch_1024']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def agreement(model: Any, flatbuffer: bytes, images: np.ndarray) -> tuple[int, float]:
    """(images whose label from the LiteRT `flatbuffer` differs from Keras's, largest probability difference)."""
    from mnist_dvc.model.serving import LiteRTPredictor

    keras_probabilities = model.predict(images, batch_size=1024, verbose=0)
    litert_probabilities = LiteRTPredictor(flatbuffer).predict(images)
    differing = int(np.sum(keras_probabilities.argmax(axis=1) != litert_probabilities.argmax(axis=1)))
    return differing, float(np.max(np.abs(keras_probabilities - litert_probabilities)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=PROJECT_ROOT / "models/model.keras")
    parser.add_argument("--test-images", type=Path, default=PROJECT_ROOT / "data/prepared/test_images.npy")
    args = parser.parse_args(argv)

    from mnist_dvc.model.architectures import Augmentation, build_tutorial_model
    from mnist_dvc.model.export import to_litert
    from mnist_dvc.model.files import load_model
    from mnist_dvc.params.compute import ComputeParams
    from mnist_dvc.reproducible_compute import configure_compute

    # The predict stage's kernels and threads (params.yaml's defaults): what a user of this machine gets.
    configure_compute(ComputeParams(portable_kernels=True, threads=2))
    images = np.load(args.test_images)
    model = load_model(args.model)
    models = {
        "ours (committed model)": model,
        "tutorial (its architecture)": build_tutorial_model(Augmentation(0.0, 0.0, 0.0), random_seed=0),
    }
    print("| model | Keras, batch 1 | LiteRT, batch 1 | Keras, batch 1024 | LiteRT, batch 1024 |")
    print("|---|---|---|---|---|")
    for name, candidate in models.items():
        flatbuffer = to_litert(candidate)
        if candidate is model:
            differing, largest = agreement(model, flatbuffer, images)
        rates = inference_rates(candidate, images, flatbuffer)
        print(
            f"| {name} | {rates['keras_batch_1']:.0f} | {rates['litert_batch_1']:.0f} | "
            f"{rates['keras_batch_1024']:.0f} | {rates['litert_batch_1024']:.0f} |",
            flush=True,
        )
    print(
        f"\nimages/s. LiteRT against Keras on the {len(images)} test images: {differing} labels differ, "
        f"largest probability difference {largest:.2e}."
    )
    summary_path = args.model.parent.parent / "metrics/export.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        print("\nThe export stage's files (`dvc repro export`):\n")
        print(
            exported_table(
                {"ours (committed model)": exported_figures(args.model.parent, summary, images)},
                {"ours (committed model)": summary["keras"]["test_accuracy"]},
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
