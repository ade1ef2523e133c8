"""Training a model: the architecture a `train` section names, its learning-rate schedule and optimiser, the
training data stream, the fit with its per-epoch log line and dvclive curves, and the summary of the kept epoch.

The train stage (`stages/train.py`) is the entry point that reads the files and calls these.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnist_dvc.digit_arrays import NUM_CLASSES, LabelledImages
from mnist_dvc.formats.training_log import CURVES
from mnist_dvc.model.architectures import Augmentation, build_compact_model, build_tutorial_model
from mnist_dvc.params.train import TrainParams
from mnist_dvc.pen_strokes import pen_widths, redrawn_with_pen

logger = logging.getLogger("mnist_dvc.training")
# Per-image draws of `training_batches` are integers; an image is redrawn when its draw modulo this is below
# `redrawn_share` of it.
DRAW_RANGE = 1 << 20


def augmentation(params: TrainParams) -> Augmentation:
    """The random distortion `params` asks for, as the model builders take it."""
    return Augmentation(
        params.max_rotation_degrees,
        params.max_zoom,
        params.max_shift_pixels,
        params.max_elastic_pixels,
        params.max_stroke_width_change,
    )


def build_model(params: TrainParams) -> keras.Model:
    """The architecture named by `params.model`, with its augmentation (and, for `compact`, its filters)."""
    if params.model == "tutorial":
        return build_tutorial_model(augmentation(params), params.random_seed)
    return build_compact_model(augmentation(params), params.random_seed, params.compact_filters)


def learning_rate_schedule(
    params: TrainParams, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
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
    encoded: np.ndarray = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    return encoded


class EpochLogger(keras.callbacks.Callback):
    """Logs one dense line per epoch and the curves to dvclive (train/ and, when validated, val/ loss and accuracy)."""

    def __init__(self, live: Any, total_epochs: int) -> None:
        super().__init__()
        self.live = live
        self.total_epochs = total_epochs
        self.started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        for key, curve in CURVES.items():
            if key in logs:  # Keras logs val_ figures only when it validates
                self.live.log_metric(curve, float(logs[key]))
        self.live.next_step()
        validation = (
            f"  val_loss {logs['val_loss']:.4f}  val_acc {logs['val_accuracy']:.4f}" if "val_loss" in logs else ""
        )
        logger.info(
            "epoch %d/%d  loss %.4f  acc %.4f%s  %.0fs",
            epoch + 1,
            self.total_epochs,
            logs["loss"],
            logs["accuracy"],
            validation,
            time.perf_counter() - self.started,
        )


def fitting_images(
    train: LabelledImages, val: LabelledImages, include_validation: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels the model is fitted on: the training split, and with `include_validation`
    the validation split after it (the shuffle mixes them)."""
    if not include_validation:
        return train.images, train.labels
    return np.concatenate([train.images, val.images]), np.concatenate([train.labels, val.labels])


def redrawn_images(images: np.ndarray, params: TrainParams) -> np.ndarray:
    """`images` (n, 28, 28, 1) redrawn with an even pen (`mnist_dvc.pen_strokes`), each with its own pen width
    from `params.redrawn_pen_widths`, drawn from the training seed. The same bytes whatever the thread count."""
    narrowest, widest = params.redrawn_pen_widths
    widths = pen_widths(len(images), narrowest, widest, params.random_seed)
    workers = max(1, min(4, len(os.sched_getaffinity(0))))
    return redrawn_with_pen(images[..., 0], widths, workers=workers)[..., np.newaxis]


def training_batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    random_seed: int,
    redrawn: np.ndarray | None = None,
    redrawn_share: float = 0.0,
) -> tf.data.Dataset:
    """(uint8 images, one-hot labels) batches, reshuffled every epoch in an order fixed by `random_seed`. With
    `redrawn` (the same images redrawn, `redrawn_images`), each image is replaced by its redrawn copy with
    probability `redrawn_share`, drawn afresh every epoch from the same seed."""
    copies = redrawn if redrawn_share else None
    if copies is not None and copies.shape != images.shape:
        raise ValueError(f"expected one redrawn image per image. Received: {copies.shape}, {images.shape}")
    columns = (images, one_hot(labels)) if copies is None else (images, copies, one_hot(labels))
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    dataset = dataset.shuffle(len(labels), seed=random_seed, reshuffle_each_iteration=True).batch(batch_size)
    if copies is not None:
        draws = tf.data.Dataset.random(seed=random_seed, rerandomize_each_iteration=True).batch(batch_size)
        below = tf.constant(round(redrawn_share * DRAW_RANGE), tf.int64)

        def chosen(batch: tuple[tf.Tensor, tf.Tensor, tf.Tensor], draw: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            originals, redrawn_copies, targets = batch
            draw = draw[: tf.shape(originals)[0]]  # the last batch may be short
            use_redrawn = tf.reshape(draw % DRAW_RANGE < below, [-1, 1, 1, 1])
            return tf.where(use_redrawn, redrawn_copies, originals), targets

        dataset = tf.data.Dataset.zip(dataset, draws).map(chosen)
    return without_autotuning(dataset.prefetch(2))


def validation_batches(validation: LabelledImages) -> tf.data.Dataset:
    """(uint8 images, one-hot labels) batches of the validation split, in its order."""
    dataset = tf.data.Dataset.from_tensor_slices((validation.images, one_hot(validation.labels)))
    return without_autotuning(dataset.batch(1024))


def without_autotuning(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """The dataset with tf.data's autotuning off. Keras makes a new iterator of it every epoch, and destroying
    the old one waits until a background thread of the autotuner wakes from its sleep: seen here (py-spy, in
    ~RootDataset::Iterator), training stood idle 4-8 s at about every second epoch, a fifth of its time.
    Autotuning only sizes buffers and thread pools; which images a batch holds, so the trained bytes, stay
    the same."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def fit(
    model: keras.Model,
    train_x: np.ndarray,
    train_y: np.ndarray,
    validation: LabelledImages | None,
    params: TrainParams,
    callbacks: list[keras.callbacks.Callback],
) -> dict[str, list[float]]:
    """Train in place and return the per-epoch history. With early stopping, the best-`val_loss` weights are kept.
    `validation` None: no validation (the history has no val_ keys)."""
    if params.early_stopping_patience:
        callbacks = [
            *callbacks,
            keras.callbacks.EarlyStopping(
                monitor="val_loss", mode="min", patience=params.early_stopping_patience, restore_best_weights=True
            ),
        ]
    redrawn = None
    if params.redrawn_share:
        started = time.perf_counter()
        redrawn = redrawn_images(train_x, params)
        logger.info("redrew %d images with an even pen in %.0fs", len(redrawn), time.perf_counter() - started)
    # Our own tf.data pipeline rather than NumPy arrays: the shuffle seed is explicit, and Keras's
    # array adapter makes TensorFlow print alarming (harmless) graph-version errors.
    history = model.fit(
        training_batches(train_x, train_y, params.batch_size, params.random_seed, redrawn, params.redrawn_share),
        validation_data=None if validation is None else validation_batches(validation),
        epochs=params.epochs,
        shuffle=False,  # the dataset reshuffles itself, with its own seed
        verbose=0,
        callbacks=callbacks,
    )
    per_epoch: dict[str, list[float]] = history.history
    return per_epoch


def summarise_history(history: dict[str, list[float]], early_stopping: bool, training_images: int) -> dict[str, Any]:
    """Which epoch's weights were kept, how many images trained them, and the kept epoch's validation figures
    when there was validation (no timings: this file must be reproducible)."""
    epochs_run = len(history["loss"])
    if "val_loss" not in history:
        return {"epochs_run": epochs_run, "kept_epoch": epochs_run, "training_images": training_images}
    val_losses = history["val_loss"]
    kept = int(np.argmin(val_losses)) if early_stopping else len(val_losses) - 1
    return {
        "epochs_run": epochs_run,
        "kept_epoch": kept + 1,
        "training_images": training_images,
        "val_loss": round(float(val_losses[kept]), 6),
        "val_accuracy": round(float(history["val_accuracy"][kept]), 6),
    }
