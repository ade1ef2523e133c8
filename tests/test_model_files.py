"""The saved model: loadable, equal in behaviour, and identical in bytes when saved twice."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnist_dvc.errors import PipelineError
from mnist_dvc.model.architectures import Augmentation, build_compact_model, build_tutorial_model, configure_tensorflow
from mnist_dvc.model.files import load_model, renumber_shared_objects, save_model
from mnist_dvc.params.compute import ComputeParams


def test_saving_twice_gives_identical_bytes(tmp_path: Path) -> None:
    model = build_compact_model(Augmentation(10.0, 0.1, 2.0), random_seed=0)
    save_model(model, tmp_path / "first.keras")
    time.sleep(1.1)  # Keras stamps the save time to the second
    save_model(model, tmp_path / "second.keras")
    assert (tmp_path / "first.keras").read_bytes() == (tmp_path / "second.keras").read_bytes()
    with zipfile.ZipFile(tmp_path / "first.keras") as archive:
        assert b"date_saved" not in archive.read("metadata.json")


def test_the_loaded_model_predicts_the_same(tmp_path: Path) -> None:
    model = build_tutorial_model(Augmentation(5.0, 0.0, 0.0), random_seed=0)
    save_model(model, tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    pixels = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(pixels, verbose=0), model.predict(pixels, verbose=0), rtol=1e-6)


def test_a_missing_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"model.keras: expected a trained model \(run the train stage\)"):
        load_model(tmp_path / "model.keras")


def test_a_corrupt_model_is_named(tmp_path: Path) -> None:
    (tmp_path / "model.keras").write_bytes(b"PK\x03\x04 definitely not a model")
    with pytest.raises(PipelineError, match=r"model.keras: expected a .keras model archive. Received: unreadable file"):
        load_model(tmp_path / "model.keras")


def test_shared_object_ids_are_numbered_in_order_of_appearance() -> None:
    config = {"a": {"shared_object_id": 140001, "x": [{"shared_object_id": 99}, {"shared_object_id": 140001}]}}
    assert renumber_shared_objects(config) == {
        "a": {"shared_object_id": 0, "x": [{"shared_object_id": 1}, {"shared_object_id": 0}]}
    }


def test_two_builds_of_the_same_model_save_to_the_same_bytes(tmp_path: Path) -> None:
    # A new model holds new Python objects, whose addresses Keras writes into config.json.
    for name in ("first", "second"):
        configure_tensorflow(random_seed=3, compute=ComputeParams(portable_kernels=True, threads=0))
        save_model(build_compact_model(Augmentation(10.0, 0.1, 2.0), random_seed=3), tmp_path / f"{name}.keras")
    assert (tmp_path / "first.keras").read_bytes() == (tmp_path / "second.keras").read_bytes()
