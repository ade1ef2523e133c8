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
# Pixels between the control points of elastic distortion's random field: strokes bend over a few pixels,
# as a hand's do, rather than jittering pixel by pixel.
ELASTIC_GRID_SPACING = 7.0


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Random affine distortion applied in training only. All zero disables it."""

    max_rotation_degrees: float
    max_zoom: float
    max_shift_pixels: float
    max_elastic_pixels: float = 0.0
    max_stroke_width_change: float = 0.0

    @property
    def enabled(self) -> bool:
        return any(
            (
                self.max_rotation_degrees,
                self.max_zoom,
                self.max_shift_pixels,
                self.max_elastic_pixels,
                self.max_stroke_width_change,
            )
        )


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
    """Rotate, zoom, shift and (optionally) elastically distort each image by a random amount, in one bilinear
    resampling (training only).

    One combined transform costs a third of chaining RandomRotation, RandomZoom and RandomTranslation,
    and interpolates once instead of three times. Randomness comes from a seeded `SeedGenerator`, so
    a run is repeatable.

    Elastic distortion (Simard et al. 2003) moves every pixel by a smooth random field. Simard blurs a field
    of per-pixel noise with a Gaussian; here the noise is drawn on a coarse grid (a control point every
    ELASTIC_GRID_SPACING pixels) and interpolated up, which makes a field as smooth for a fraction of the
    arithmetic: on 2 cores, a 28x28 Gaussian blur per image would slow every training step noticeably.
    Images must have one channel (MNIST's).
    """

    def __init__(
        self,
        max_rotation_degrees: float,
        max_zoom: float,
        max_shift_pixels: float,
        seed: int | None = None,
        max_elastic_pixels: float = 0.0,
        max_stroke_width_change: float = 0.0,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.max_rotation_degrees = max_rotation_degrees
        self.max_zoom = max_zoom
        self.max_shift_pixels = max_shift_pixels
        self.max_elastic_pixels = max_elastic_pixels
        self.max_stroke_width_change = max_stroke_width_change
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images: Any, training: bool | None = None) -> Any:
        if not training:
            return images
        if self.max_stroke_width_change:
            images = self._change_stroke_width(images)
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
        if not self.max_elastic_pixels:
            return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant")
        return self._affine_and_elastic(images, transform)

    def _affine_and_elastic(self, images: Any, transform: Any) -> Any:
        """Bilinear resampling at the points `transform` maps each output pixel to, each moved by a smooth random
        displacement of at most `max_elastic_pixels`; points outside the image read as 0 (no ink)."""
        batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
        grid = (max(2, round(height / ELASTIC_GRID_SPACING)), max(2, round(width / ELASTIC_GRID_SPACING)))
        coarse = keras.random.uniform(
            (batch, *grid, 2), minval=-self.max_elastic_pixels, maxval=self.max_elastic_pixels, seed=self.seed_generator
        )
        displacement = ops.image.resize(coarse, (height, width), interpolation="bilinear")
        rows, columns = ops.meshgrid(
            ops.arange(height, dtype="float32"), ops.arange(width, dtype="float32"), indexing="ij"
        )
        t = [ops.reshape(transform[:, i], (-1, 1, 1)) for i in range(6)]
        source_x = t[0] * columns + t[1] * rows + t[2] + displacement[..., 0]
        source_y = t[3] * columns + t[4] * rows + t[5] + displacement[..., 1]
        left, top = ops.floor(source_x), ops.floor(source_y)
        right_share, bottom_share = source_x - left, source_y - top
        pixels = ops.reshape(images, (-1,))
        first_of_image = ops.reshape(ops.arange(batch, dtype="int32") * (height * width), (-1, 1, 1))

        def at(row: Any, column: Any) -> Any:
            inside = (column >= 0) & (column <= width - 1) & (row >= 0) & (row <= height - 1)
            row_index = ops.cast(ops.clip(row, 0, height - 1), "int32")
            column_index = ops.cast(ops.clip(column, 0, width - 1), "int32")
            values = ops.take(pixels, first_of_image + row_index * width + column_index)
            return ops.where(inside, values, ops.zeros_like(values))

        upper = (1.0 - right_share) * at(top, left) + right_share * at(top, left + 1.0)
        lower = (1.0 - right_share) * at(top + 1.0, left) + right_share * at(top + 1.0, left + 1.0)
        return ops.expand_dims((1.0 - bottom_share) * upper + bottom_share * lower, -1)

    def _change_stroke_width(self, images: Any) -> Any:
        """Each image's strokes thickened or thinned by a random amount of at most `max_stroke_width_change`
        pixels of width: a blend of the image with its grayscale dilation (3x3 maximum, which widens a stroke
        by 2 pixels) or its erosion (3x3 minimum, 2 pixels narrower)."""
        change = self._uniform(ops.shape(images)[0], self.max_stroke_width_change / 2.0)
        share = ops.reshape(ops.abs(change), (-1, 1, 1, 1))
        dilated = ops.max_pool(images, 3, strides=1, padding="same")
        eroded = -ops.max_pool(-images, 3, strides=1, padding="same")
        target = ops.where(ops.reshape(change, (-1, 1, 1, 1)) > 0, dilated, eroded)
        return images + share * (target - images)

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
            max_elastic_pixels=self.max_elastic_pixels,
            seed=self.seed,
        )
        # Written only when on, so that the saved file of a model without it is the same bytes as before the
        # option existed (dvc.lock's record of the default recipe).
        if self.max_stroke_width_change:
            config["max_stroke_width_change"] = self.max_stroke_width_change
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
            max_elastic_pixels=augmentation.max_elastic_pixels,
            max_stroke_width_change=augmentation.max_stroke_width_change,
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


# The compact model's filters, first convolution to last: params.yaml's `train.compact_filters`.
COMPACT_FILTERS = (32, 64, 64, 64)


def build_compact_model(
    augmentation: Augmentation, random_seed: int, filters: tuple[int, ...] = COMPACT_FILTERS
) -> keras.Model:
    """A BatchNorm CNN: a 5x5 stride-2 convolution, 3x3 ones after it (the first of stride 2), global average
    pooling. `filters` gives each convolution's filter count, first to last: by default 32, then three of 64.

    The first convolution goes straight from 28x28 to 12x12: full-resolution feature maps cost memory
    traffic out of proportion to their multiply-adds on a CPU. It is unpadded ("valid"): its 12x12
    windows of 5x5 pixels at stride 2 cover pixels 0 to 26 of each row and column, which hold all
    but a trace of MNIST's ink (the digits are drawn in the central 20x20 box), while a padded one would
    spend a quarter of its positions, and of every later layer's, on the empty border. Most of the
    work is at 6x6. With the default filters: about 3.4 M multiply-adds per image (the tutorial model: 11 M),
    94,506 parameters.
    """
    if len(filters) < 2:
        raise ValueError(f"the compact model needs at least 2 convolutions' filters. Received: {filters!r}")
    pixels, x = _input_layers(augmentation, random_seed)
    x = _conv_bn_relu(x, filters[0], kernel_size=5, strides=2, padding="valid")
    x = _conv_bn_relu(x, filters[1], strides=2)
    for count in filters[2:]:
        x = _conv_bn_relu(x, count)
    x = layers.GlobalAveragePooling2D()(x)
    probabilities = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(pixels, probabilities, name="compact")
