"""LiteRT predictions (mnist_dvc/model/serving.py): the same probabilities as Keras, at any batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnist_dvc.errors import PipelineError
from mnist_dvc.model.architectures import Augmentation, build_compact_model, build_tutorial_model
from mnist_dvc.model.export import to_litert
from mnist_dvc.model.files import load_model, save_model
from mnist_dvc.model.serving import LiteRTPredictor
from tests.conftest import synthetic_digits

BUILDERS = {"compact": build_compact_model, "tutorial": build_tutorial_model}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def saved_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A model as the pipeline saves and loads it, augmentation layer included (inference must leave it out)."""
    model = BUILDERS[request.param](Augmentation(10.0, 0.1, 2.0), random_seed=0)
    # Fresh weights give nearly equal probabilities to all ten classes; a steeper last layer spreads them, so
    # that the labels are decided by more than rounding and comparing them means something.
    last = model.layers[-1]
    kernel, bias = last.get_weights()
    last.set_weights([kernel * 50.0, bias])
    path = tmp_path_factory.mktemp(request.param) / "model.keras"
    save_model(model, path)
    return load_model(path)


def test_litert_gives_keras_probabilities_at_every_batch_size(saved_model) -> None:
    images, _ = synthetic_digits(per_class=5, seed=3)  # uint8 (50, 28, 28)
    expected = saved_model.predict(images[..., np.newaxis].astype(np.float32), verbose=0)
    predictor = LiteRTPredictor.from_keras(saved_model)
    whole = predictor.predict(images)
    one_by_one = np.concatenate([predictor.predict(images[index : index + 1]) for index in range(len(images))])
    again = predictor.predict(images[..., np.newaxis].astype(np.float64))
    for probabilities in (whole, one_by_one, again):
        assert probabilities.shape == (50, 10) and probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    # The labels are Keras's wherever the top two classes are not within rounding of each other.
    top_two = np.sort(expected, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > 1e-4
    assert clear.sum() >= 45
    assert np.array_equal(whole.argmax(axis=1)[clear], expected.argmax(axis=1)[clear])
    np.testing.assert_array_equal(one_by_one, whole)  # XNNPACK's result for an image does not depend on its batch
    np.testing.assert_array_equal(predictor.predict(images, batch_size=7), whole)  # 8 calls, the last of 1 image


def test_the_flatbuffer_is_the_same_bytes_each_time(saved_model) -> None:
    assert to_litert(saved_model) == to_litert(saved_model)


def test_no_images_give_no_probabilities_and_wrong_shapes_are_refused(saved_model) -> None:
    predictor = LiteRTPredictor.from_keras(saved_model)
    assert predictor.predict(np.zeros((0, 28, 28), np.uint8)).shape == (0, 10)
    for wrong in (
        np.zeros((2, 28, 27), np.uint8),
        np.zeros((2, 28, 28, 3), np.uint8),
        np.zeros((28, 28), np.uint8),
        np.full((1, 28, 28), "7"),
    ):
        with pytest.raises(ValueError, match=r"Expected images of shape \(n, 28, 28\[, 1\]\) holding numbers"):
            predictor.predict(wrong)


def test_a_flatbuffer_of_another_shape_is_refused(tmp_path: Path) -> None:
    import keras

    inputs = keras.Input(shape=(32, 32, 1))
    other = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs)))
    with pytest.raises(
        PipelineError,
        match=r"LiteRT model: expected input \(n, 28, 28, 1\) and output \(n, 10\)\. "
        r"Received: input \(1, 32, 32, 1\), output \(1, 10\)",
    ):
        LiteRTPredictor(to_litert(other))
