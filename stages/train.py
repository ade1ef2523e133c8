"""Stage 3, train: fit the CNN named in params on the prepared training split and save it to `models/`.

Two recipes share this one stage: `model: tutorial` with a constant learning rate and early stopping
rebuilds the tutorial's model and procedure for comparison; `model: compact` with augmentation and a
warm-up + cosine schedule is the project's default. Training curves are logged per epoch with dvclive;
the saved model file depends only on the weights and architecture (see `mnist_dvc.model.files`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from mnist_dvc.atomic_files import atomic_directory, write_text_atomically
from mnist_dvc.compute import ComputeParams
from mnist_dvc.digits import NUM_CLASSES
from mnist_dvc.formats.prepared_arrays import read_prepared
from mnist_dvc.model.architectures import (
    MODEL_NAMES,
    Augmentation,
    build_compact_model,
    build_tutorial_model,
    configure_tensorflow,
)
from mnist_dvc.model.files import save_model
from mnist_dvc.params import check, load_section
from mnist_dvc.runtime import configure_logging, exits_cleanly_on_bad_input

logger = logging.getLogger("stages.train")

SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass(frozen=True)
class TrainParams:
    """The `train` section of params.yaml."""

    SECTION: ClassVar[str] = "train"
    model: str
    random_seed: int
    epochs: int
    batch_size: int
    learning_rate: float
    schedule: str
    warmup_epochs: int
    early_stopping_patience: int
    label_smoothing: float
    max_rotation_degrees: float
    max_zoom: float
    max_shift_pixels: float

    def __post_init__(self) -> None:
        renamed = " (`seed` is now called `tutorial`)" if self.model == "seed" else ""
        check(self.model in MODEL_NAMES, "train.model", f"one of: {', '.join(MODEL_NAMES)}{renamed}", self.model)
        check(self.random_seed >= 0, "train.random_seed", "a non-negative integer", self.random_seed)
        check(self.epochs >= 1, "train.epochs", "a positive integer", self.epochs)
        check(self.batch_size >= 1, "train.batch_size", "a positive integer", self.batch_size)
        check(0.0 < self.learning_rate <= 1.0, "train.learning_rate", "a number in (0, 1]", self.learning_rate)
        check(self.schedule in SCHEDULES, "train.schedule", f"one of: {', '.join(SCHEDULES)}", self.schedule)
        check(0 <= self.warmup_epochs < self.epochs, "train.warmup_epochs",
              "a non-negative integer smaller than train.epochs", self.warmup_epochs)
        check(self.early_stopping_patience >= 0, "train.early_stopping_patience",
              "0 (off) or a positive integer", self.early_stopping_patience)
        check(0.0 <= self.label_smoothing < 1.0, "train.label_smoothing", "a number in [0, 1)", self.label_smoothing)
        check(0.0 <= self.max_rotation_degrees <= 180.0, "train.max_rotation_degrees",
              "a number of degrees in [0, 180]", self.max_rotation_degrees)
        check(0.0 <= self.max_zoom < 1.0, "train.max_zoom", "a fraction in [0, 1)", self.max_zoom)
        check(0.0 <= self.max_shift_pixels <= 14.0, "train.max_shift_pixels",
              "a number of pixels in [0, 14]", self.max_shift_pixels)

    @property
    def augmentation(self) -> Augmentation:
        return Augmentation(self.max_rotation_degrees, self.max_zoom, self.max_shift_pixels)


def build_model(params: TrainParams) -> keras.Model:
    """The architecture named by `params.model`, with its augmentation."""
    builder = {"tutorial": build_tutorial_model, "compact": build_compact_model}[params.model]
    return builder(params.augmentation, params.random_seed)


def learning_rate_schedule(params: TrainParams, steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """A constant rate, or a linear warm-up to `learning_rate` followed by cosine decay to zero."""
    if params.schedule == "constant":
        return params.learning_rate
    warmup_steps = params.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=params.learning_rate / 25.0 if warmup_steps else params.learning_rate,
        decay_steps=(params.epochs - params.warmup_epochs) * steps_per_epoch,
        alpha=0.0,
        warmup_target=params.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def compile_model(model: keras.Model, params: TrainParams, steps_per_epoch: int) -> keras.Model:
    """Adam on categorical cross-entropy (with optional label smoothing), reporting accuracy."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate_schedule(params, steps_per_epoch)),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=params.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def one_hot(labels: np.ndarray) -> np.ndarray:
    """uint8 labels (n,) to float32 one-hot (n, 10)."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


class EpochLogger(keras.callbacks.Callback):
    """Logs one dense line per epoch and the curves to dvclive (train/ and val/ loss and accuracy)."""

    def __init__(self, live: Any, total_epochs: int) -> None:
        super().__init__()
        self.live = live
        self.total_epochs = total_epochs
        self.started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        for split, prefix in (("train", ""), ("val", "val_")):
            for name in ("loss", "accuracy"):
                self.live.log_metric(f"{split}/{name}", float(logs[prefix + name]))
        self.live.next_step()
        logger.info(
            "epoch %d/%d  loss %.4f  acc %.4f  val_loss %.4f  val_acc %.4f  %.0fs",
            epoch + 1, self.total_epochs, logs["loss"], logs["accuracy"],
            logs["val_loss"], logs["val_accuracy"], time.perf_counter() - self.started,
        )


def training_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, random_seed: int) -> tf.data.Dataset:
    """(uint8 images, one-hot labels) batches, reshuffled every epoch in an order fixed by `random_seed`."""
    dataset = tf.data.Dataset.from_tensor_slices((images, one_hot(labels)))
    dataset = dataset.shuffle(len(labels), seed=random_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def fit(model: keras.Model, train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
        params: TrainParams, callbacks: list[keras.callbacks.Callback]) -> dict[str, list[float]]:
    """Train in place and return the per-epoch history. With early stopping, the best-`val_loss` weights are kept."""
    if params.early_stopping_patience:
        callbacks = [*callbacks, keras.callbacks.EarlyStopping(
            monitor="val_loss", mode="min", patience=params.early_stopping_patience, restore_best_weights=True)]
    # Our own tf.data pipeline rather than NumPy arrays: the shuffle seed is explicit, and Keras's
    # array adapter makes TensorFlow print alarming (harmless) graph-version errors.
    history = model.fit(
        training_batches(train_x, train_y, params.batch_size, params.random_seed),
        validation_data=tf.data.Dataset.from_tensor_slices((val_x, one_hot(val_y))).batch(1024),
        epochs=params.epochs,
        shuffle=False,  # the dataset reshuffles itself, with its own seed
        verbose=0,
        callbacks=callbacks,
    )
    return history.history


def summarise_history(history: dict[str, list[float]], early_stopping: bool) -> dict[str, Any]:
    """Which epoch's weights were kept and its validation figures (no timings: this file must be reproducible)."""
    val_losses = history["val_loss"]
    kept = int(np.argmin(val_losses)) if early_stopping else len(val_losses) - 1
    return {
        "epochs_run": len(val_losses),
        "kept_epoch": kept + 1,
        "val_loss": round(float(val_losses[kept]), 6),
        "val_accuracy": round(float(history["val_accuracy"][kept]), 6),
    }


@exits_cleanly_on_bad_input
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared-dir", type=Path, required=True)
    parser.add_argument("--model-out", type=Path, required=True, help="the saved .keras model")
    parser.add_argument("--log-dir", type=Path, required=True, help="dvclive folder for the training curves")
    parser.add_argument("--summary-out", type=Path, required=True, help="JSON summary of the kept epoch")
    args = parser.parse_args(argv)
    configure_logging()
    params = load_section(args.params, TrainParams.SECTION, TrainParams)
    configure_tensorflow(params.random_seed, load_section(args.params, ComputeParams.SECTION, ComputeParams))
    train = read_prepared(args.prepared_dir, "train")
    val = read_prepared(args.prepared_dir, "val")
    logger.info("train %s, val %s", train.images.shape, val.images.shape)

    model = build_model(params)
    steps_per_epoch = -(-len(train.labels) // params.batch_size)
    compile_model(model, params, steps_per_epoch)
    logger.info("model %s: %d parameters", model.name, model.count_params())

    from dvclive import Live  # imported here: dvclive pulls in DVC, which only this stage needs

    started = time.perf_counter()
    with atomic_directory(args.log_dir) as staging, Live(
        dir=str(staging), dvcyaml=False, save_dvc_exp=False, report=None
    ) as live:
        history = fit(model, train.images, train.labels, val.images, val.labels, params,
                      [EpochLogger(live, params.epochs)])
    logger.info("trained in %.1fs; wrote %s", time.perf_counter() - started, args.log_dir)

    summary = summarise_history(history, early_stopping=params.early_stopping_patience > 0)
    save_model(model, args.model_out)
    write_text_atomically(args.summary_out, json.dumps(summary, indent=2) + "\n")
    logger.info("kept epoch %d (val_accuracy %.4f); wrote %s and %s",
                summary["kept_epoch"], summary["val_accuracy"], args.model_out, args.summary_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
