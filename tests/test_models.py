"""Model builders: the tutorial's architecture exactly, ours, and the training-only augmentation."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mnist_dvc.model.architectures import (
    Augmentation,
    FusedBatchNormalization,
    RandomAffine,
    build_compact_model,
    build_tutorial_model,
)

NO_AUGMENTATION = Augmentation(0.0, 0.0, 0.0)
COMPACT_PARAMETERS = 94_506  # 94,058 trainable + 448 batch-normalisation statistics


def test_seed_model_is_the_tutorials_cnn() -> None:
    model = build_tutorial_model(NO_AUGMENTATION, random_seed=0)
    assert model.count_params() == 454_922
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer",
        "Rescaling",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ]
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.padding) for c in convolutions] == [(32, (5, 5), "same"), (64, (5, 5), "same")]
    assert all(layer.rate == 0.4 for layer in model.layers if isinstance(layer, keras.layers.Dropout))


@pytest.mark.parametrize("builder", [build_tutorial_model, build_compact_model])
def test_models_map_raw_pixels_to_probabilities(builder) -> None:  # noqa: ANN001
    model = builder(Augmentation(10.0, 0.1, 2.0), random_seed=0)
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28, 1), dtype=np.uint8)
    probabilities = np.asarray(model(pixels.astype("float32"), training=False))
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_scaling_is_inside_the_model() -> None:
    model = build_tutorial_model(NO_AUGMENTATION, random_seed=0)
    rescaling = model.get_layer("scale_to_unit")
    assert rescaling.scale == pytest.approx(1 / 255)


def test_augmentation_is_the_identity_at_inference() -> None:
    layer = RandomAffine(15.0, 0.1, 3.0, seed=1)
    images = np.random.default_rng(1).random((4, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)


def test_augmentation_moves_pixels_in_training_and_is_seeded() -> None:
    images = np.zeros((4, 28, 28, 1), dtype="float32")
    images[:, 10:18, 12:16] = 1.0
    first = np.asarray(RandomAffine(15.0, 0.1, 3.0, seed=7)(images, training=True))
    again = np.asarray(RandomAffine(15.0, 0.1, 3.0, seed=7)(images, training=True))
    assert first.shape == images.shape
    assert not np.allclose(first, images)
    np.testing.assert_array_equal(first, again)
    # A small distortion keeps most of the ink: nothing is flipped or blown up.
    assert 0.6 < first.sum() / images.sum() < 1.5


def test_pure_shift_moves_the_image_by_whole_pixels() -> None:
    images = np.zeros((1, 28, 28, 1), dtype="float32")
    images[0, 14, 14] = 1.0
    # With only shifts allowed and a seed, the transform is a translation; the centre of mass moves with it.
    shifted = np.asarray(RandomAffine(0.0, 0.0, 3.0, seed=0)(images, training=True))[0, ..., 0]
    assert shifted.sum() == pytest.approx(1.0, abs=1e-5)
    rows, cols = np.indices(shifted.shape)
    centre = (float((rows * shifted).sum()), float((cols * shifted).sum()))
    assert abs(centre[0] - 14) <= 3.0 and abs(centre[1] - 14) <= 3.0


def test_augmentation_is_off_when_all_limits_are_zero() -> None:
    model = build_compact_model(NO_AUGMENTATION, random_seed=0)
    assert not any(isinstance(layer, RandomAffine) for layer in model.layers)
    assert not NO_AUGMENTATION.enabled and Augmentation(0.0, 0.0, 1.0).enabled


def test_fused_batch_normalisation_matches_keras() -> None:
    inputs = np.random.default_rng(2).normal(3.0, 2.0, size=(8, 5, 5, 4)).astype("float32")
    ours, reference = FusedBatchNormalization(), keras.layers.BatchNormalization()
    for training in (True, False):
        np.testing.assert_allclose(
            np.asarray(ours(inputs, training=training)),
            np.asarray(reference(inputs, training=training)),
            rtol=1e-4,
            atol=1e-4,
        )
    np.testing.assert_allclose(np.asarray(ours.moving_mean), np.asarray(reference.moving_mean), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(ours.moving_variance), np.asarray(reference.moving_variance), rtol=1e-4)


def test_compact_model_size() -> None:
    assert build_compact_model(NO_AUGMENTATION, random_seed=0).count_params() == COMPACT_PARAMETERS


@pytest.mark.parametrize("filters", [(32, 64, 64, 64), (48, 72, 72), (16, 32), (32, 64, 64, 64, 64, 96)])
def test_compact_filters_set_each_convolutions_width_and_the_depth(filters: tuple[int, ...]) -> None:
    model = build_compact_model(NO_AUGMENTATION, random_seed=0, filters=filters)
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convolutions] == list(filters)
    assert [(c.kernel_size, c.strides, c.padding) for c in convolutions[:2]] == [
        ((5, 5), (2, 2), "valid"),
        ((3, 3), (2, 2), "same"),
    ]
    assert all((c.kernel_size, c.strides) == ((3, 3), (1, 1)) for c in convolutions[2:])
    # Each convolution: k*k*inputs*filters weights (no bias) and 4 batch-normalisation values per filter.
    inputs = (1, *filters[:-1])
    kernels = (25,) + (9,) * (len(filters) - 1)
    expected = sum(k * i * f + 4 * f for k, i, f in zip(kernels, inputs, filters, strict=True)) + filters[-1] * 10 + 10
    assert model.count_params() == expected
    assert model(np.zeros((2, 28, 28, 1), dtype="float32"), training=False).shape == (2, 10)


def test_compact_model_needs_two_convolutions() -> None:
    with pytest.raises(ValueError, match=r"at least 2 convolutions' filters. Received: \(64,\)"):
        build_compact_model(NO_AUGMENTATION, random_seed=0, filters=(64,))


def test_compact_model_sees_all_but_the_last_row_and_column() -> None:
    # The unpadded 5x5 stride-2 first convolution covers pixels 0-26: a dot there changes the output,
    # a dot on row or column 27 (blank in about 99% of MNIST's images, a trace of ink in the rest) does not.
    model = build_compact_model(NO_AUGMENTATION, random_seed=0)
    positions = [(0, 0), (0, 26), (26, 0), (26, 26), (13, 13), (27, 5), (5, 27), (27, 27)]
    dots = np.zeros((len(positions), 28, 28, 1), dtype="float32")
    for index, (row, col) in enumerate(positions):
        dots[index, row, col] = 255.0
    blank = np.asarray(model(np.zeros((1, 28, 28, 1), dtype="float32"), training=False))[0]
    changed = np.abs(np.asarray(model(dots, training=False)) - blank).max(axis=1) > 1e-7
    assert changed.tolist() == [True] * 5 + [False] * 3
    feature_maps = [layer.output.shape[1:3] for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert feature_maps == [(12, 12), (6, 6), (6, 6), (6, 6)]
