"""Keras model builders and the TensorFlow settings that make training reproducible.

Every model takes raw uint8 pixels of shape (n, 28, 28, 1): the /255 scaling lives inside the model,
so whoever loads the saved file cannot forget it. Importing this module registers the custom layers,
which `keras.models.load_model` needs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras
from keras import layers, ops

from mnist_dvc.digit_arrays import IMAGE_SIDE, NUM_CLASSES
from mnist_dvc.params.compute import ComputeParams
from mnist_dvc.reproducible_compute import configure_compute

# Keras finds our custom layers in a saved model by this package and their class name.
REGISTRATION_PACKAGE = "mnist"
IMAGE_SHAPE = (IMAGE_SIDE, IMAGE_SIDE, 1)


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Random affine distortion applied in training only. All zero disables it."""

    max_rotation_degrees: float
    max_zoom: float
    max_shift_pixels: float

    @property
    def enabled(self) -> bool:
        return any((self.max_rotation_degrees, self.max_zoom, self.max_shift_pixels))


def configure_tensorflow(random_seed: int, compute: ComputeParams) -> None:
    """Pin kernels and threads (see `mnist_dvc.reproducible_compute`), make ops deterministic and seed every generator.

    Must run before the first op executes.
    """
    configure_compute(compute)
    # Layer names come from a per-process counter and end up in the saved file: start it afresh.
    keras.backend.clear_session()
    keras.utils.set_random_seed(random_seed)


@keras.saving.register_keras_serializable(package=REGISTRATION_PACKAGE)
class RandomAffine(layers.Layer):
    """Rotate, zoom and shift each image by a random amount in one bilinear resampling (training only).

    One combined transform costs a third of chaining RandomRotation, RandomZoom and RandomTranslation,
    and interpolates once instead of three times. Randomness comes from a seeded `SeedGenerator`, so
    a run is repeatable.
    """

    def __init__(
        self,
        max_rotation_degrees: float,
        max_zoom: float,
        max_shift_pixels: float,
        seed: int | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.max_rotation_degrees = max_rotation_degrees
        self.max_zoom = max_zoom
        self.max_shift_pixels = max_shift_pixels
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images: Any, training: bool | None = None) -> Any:
        if not training:
            return images
        batch = ops.shape(images)[0]
        angle = self._uniform(batch, math.radians(self.max_rotation_degrees))
        scale = 1.0 + self._uniform(batch, self.max_zoom)
        shift_x = self._uniform(batch, self.max_shift_pixels)
        shift_y = self._uniform(batch, self.max_shift_pixels)
        # affine_transform maps each output pixel to the input point it samples: rotate and scale
        # about the image centre, then shift.
        centre_x = (ops.cast(ops.shape(images)[2], "float32") - 1.0) / 2.0
        centre_y = (ops.cast(ops.shape(images)[1], "float32") - 1.0) / 2.0
        cos = ops.cos(angle) / scale
        sin = ops.sin(angle) / scale
        transform = ops.stack(
            [
                cos,
                -sin,
                centre_x - cos * centre_x + sin * centre_y - shift_x,
                sin,
                cos,
                centre_y - sin * centre_x - cos * centre_y - shift_y,
                ops.zeros_like(cos),
                ops.zeros_like(cos),
            ],
            axis=1,
        )
        return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant")

    def _uniform(self, batch: Any, limit: float) -> Any:
        return keras.random.uniform((batch,), minval=-limit, maxval=limit, seed=self.seed_generator)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(
            max_rotation_degrees=self.max_rotation_degrees,
            max_zoom=self.max_zoom,
            max_shift_pixels=self.max_shift_pixels,
            seed=self.seed,
        )
        return config


@keras.saving.register_keras_serializable(package=REGISTRATION_PACKAGE)
class FusedBatchNormalization(layers.Layer):
    """Batch normalisation through TensorFlow's fused kernel (one op instead of about ten).

    Keras 3 composes batch normalisation from generic ops; on a 2-core CPU the fused kernel makes a
    training step of the compact model about 20% faster. Same maths, momentum and epsilon as
    `keras.layers.BatchNormalization` (channels last).
    """

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = (input_shape[-1],)
        self.gamma = self.add_weight(shape=channels, initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=channels, initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(shape=channels, initializer="zeros", trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight(
            shape=channels, initializer="ones", trainable=False, name="moving_variance"
        )

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        import tensorflow as tf

        if training:
            outputs, batch_mean, batch_variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True
            )
            # The kernel returns the unbiased (n - 1) variance; Keras tracks the biased one.
            count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], inputs.dtype)
            batch_variance = batch_variance * (count - 1.0) / count
            self.moving_mean.assign(self.moving_mean * self.momentum + batch_mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + batch_variance * (1.0 - self.momentum))
            return outputs
        outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            self.gamma,
            self.beta,
            mean=self.moving_mean,
            variance=self.moving_variance,
            epsilon=self.epsilon,
            is_training=False,
        )
        return outputs

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(momentum=self.momentum, epsilon=self.epsilon)
        return config


def _input_layers(augmentation: Augmentation, random_seed: int) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    pixels = keras.Input(shape=IMAGE_SHAPE, name="pixels")
    scaled = layers.Rescaling(1.0 / 255.0, name="scale_to_unit")(pixels)
    if augmentation.enabled:
        scaled = RandomAffine(
            augmentation.max_rotation_degrees,
            augmentation.max_zoom,
            augmentation.max_shift_pixels,
            seed=random_seed,
            name="augment",
        )(scaled)
    return pixels, scaled


def build_tutorial_model(augmentation: Augmentation, random_seed: int) -> keras.Model:
    """The tutorial's CNN, layer for layer (454,922 parameters), with the /255 scaling built in."""
    pixels, x = _input_layers(augmentation, random_seed)
    x = layers.Conv2D(32, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.4)(x)
    x = layers.Conv2D(64, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.4)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.4)(x)
    probabilities = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(pixels, probabilities, name="tutorial")


def _conv_bn_relu(
    x: keras.KerasTensor, filters: int, kernel_size: int = 3, strides: int = 1, padding: str = "same"
) -> keras.KerasTensor:
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False)(x)
    x = FusedBatchNormalization()(x)
    return layers.ReLU()(x)


def build_compact_model(augmentation: Augmentation, random_seed: int) -> keras.Model:
    """A BatchNorm CNN: a 5x5 stride-2 convolution (32 filters), three 3x3 ones (64; the first of stride 2),
    global average pooling.

    The first convolution goes straight from 28x28 to 12x12: full-resolution feature maps cost memory
    traffic out of proportion to their multiply-adds on a CPU. It is unpadded ("valid"): its 12x12
    windows of 5x5 pixels at stride 2 cover pixels 0 to 26 of each row and column, which hold all
    but a trace of MNIST's ink (the digits are drawn in the central 20x20 box), while a padded one would
    spend a quarter of its positions, and of every later layer's, on the empty border. Most of the
    work is at 6x6 with 64 channels. About 3.4 M multiply-adds per image (the tutorial model: 11 M),
    94,506 parameters.
    """
    pixels, x = _input_layers(augmentation, random_seed)
    x = _conv_bn_relu(x, 32, kernel_size=5, strides=2, padding="valid")
    x = _conv_bn_relu(x, 64, strides=2)
    x = _conv_bn_relu(x, 64)
    x = _conv_bn_relu(x, 64)
    x = layers.GlobalAveragePooling2D()(x)
    probabilities = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(pixels, probabilities, name="compact")
