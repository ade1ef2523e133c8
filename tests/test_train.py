"""train: schedule, labels, history summary, and a real (tiny) fit that learns and is repeatable."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from mnist_dvc.digit_arrays import LabelledImages, check_labelled_images
from mnist_dvc.params.train import TrainParams
from mnist_dvc.training import (
    build_model,
    learning_rate_schedule,
    one_hot,
    summarise_history,
    training_batches,
    validation_batches,
)
from stages import train
from tests.conftest import synthetic_digits

TINY = TrainParams(
    model="compact",
    compact_filters=(32, 64, 64, 64),
    random_seed=0,
    epochs=3,
    batch_size=16,
    learning_rate=0.01,
    schedule="cosine",
    warmup_epochs=1,
    early_stopping_patience=0,
    label_smoothing=0.1,
    max_rotation_degrees=5.0,
    max_zoom=0.05,
    max_shift_pixels=1.0,
    max_elastic_pixels=0.0,
    max_stroke_width_change=0.0,
    redrawn_share=0.0,
    redrawn_pen_widths=(1.5, 4.0),
    include_validation=False,
)
COMPUTE = {"portable_kernels": True, "threads": 1}


def test_one_hot() -> None:
    encoded = one_hot(np.array([0, 9, 3], dtype=np.uint8))
    assert encoded.shape == (3, 10) and encoded.dtype == np.float32
    assert encoded.argmax(axis=1).tolist() == [0, 9, 3] and encoded.sum() == 3


def test_cosine_schedule_warms_up_then_decays_to_zero() -> None:
    schedule = learning_rate_schedule(TINY, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in (0, 10, 20, 30)]
    assert rates[0] == pytest.approx(0.01 / 25)
    assert rates[1] == pytest.approx(0.01)
    assert rates[1] > rates[2] > rates[3]
    assert rates[3] == pytest.approx(0.0, abs=1e-9)


def test_constant_schedule_is_the_learning_rate() -> None:
    assert learning_rate_schedule(dataclasses.replace(TINY, schedule="constant"), 10) == 0.01


def test_build_model_gives_the_compact_model_the_filters_of_its_params() -> None:
    model = build_model(dataclasses.replace(TINY, compact_filters=(24, 40, 40)))
    assert model.name == "compact"
    assert [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)] == [24, 40, 40]
    tutorial = build_model(dataclasses.replace(TINY, model="tutorial", compact_filters=(24, 40, 40)))
    assert [layer.filters for layer in tutorial.layers if isinstance(layer, keras.layers.Conv2D)] == [32, 64]


def test_summary_keeps_the_best_epoch_with_early_stopping() -> None:
    history = {"loss": [0.9, 0.4, 0.3], "val_loss": [0.5, 0.2, 0.3], "val_accuracy": [0.8, 0.95, 0.9]}
    assert summarise_history(history, early_stopping=True, training_images=40) == {
        "epochs_run": 3,
        "kept_epoch": 2,
        "training_images": 40,
        "val_loss": 0.2,
        "val_accuracy": 0.95,
    }
    assert summarise_history(history, early_stopping=False, training_images=40)["kept_epoch"] == 3


def test_summary_without_validation_has_no_validation_figures() -> None:
    summary = summarise_history({"loss": [0.9, 0.4]}, early_stopping=False, training_images=50)
    assert summary == {"epochs_run": 2, "kept_epoch": 2, "training_images": 50}


def write_prepared_digits(folder: Path) -> None:
    from mnist_dvc.formats.prepared_arrays import write_prepared
    from mnist_dvc.params.preprocess import PreprocessParams
    from stages.preprocess import prepare_splits

    images, labels = synthetic_digits(per_class=12, seed=1)
    checked = check_labelled_images(images, labels, "synthetic")
    write_prepared(prepare_splits(checked, checked, PreprocessParams(0.25, 0)), checked.images, folder)


def run_train(tmp_path: Path, name: str, params: TrainParams) -> tuple[bytes, dict]:
    params_file = tmp_path / f"{name}.yaml"
    params_file.write_text(json.dumps({"compute": COMPUTE, "train": dataclasses.asdict(params)}))
    outputs = tmp_path / name
    argv = [
        "--params",
        str(params_file),
        "--prepared-dir",
        str(tmp_path / "prepared"),
        "--model-out",
        str(outputs / "model.keras"),
        "--log-dir",
        str(outputs / "training"),
        "--summary-out",
        str(outputs / "train.json"),
    ]
    assert train.main(argv) == 0
    return (outputs / "model.keras").read_bytes(), json.loads((outputs / "train.json").read_text())


def test_training_learns_and_logs_one_curve_point_per_epoch(tmp_path: Path) -> None:
    write_prepared_digits(tmp_path / "prepared")
    params = dataclasses.replace(TINY, model="tutorial", epochs=4, batch_size=8, learning_rate=0.002)
    _, summary = run_train(tmp_path, "tutorial", params)
    assert summary["epochs_run"] == 4 and summary["kept_epoch"] == 4
    assert summary["val_accuracy"] > 0.5  # ten classes: chance is 0.1
    curve = (tmp_path / "tutorial" / "training" / "plots" / "metrics" / "val" / "accuracy.tsv").read_text().splitlines()
    assert curve[0] == "step\taccuracy" and len(curve) == 1 + 4


def test_include_validation_trains_on_both_splits_and_reports_no_validation_score(tmp_path: Path) -> None:
    from mnist_dvc.formats.prepared_arrays import read_prepared
    from mnist_dvc.formats.training_log import read_training_curves

    write_prepared_digits(tmp_path / "prepared")
    both = len(read_prepared(tmp_path / "prepared", "train").labels) + len(
        read_prepared(tmp_path / "prepared", "val").labels
    )
    held_out_model, held_out = run_train(tmp_path, "held-out", TINY)
    all_model, on_all = run_train(tmp_path, "all", dataclasses.replace(TINY, include_validation=True))
    assert on_all == {"epochs_run": 3, "kept_epoch": 3, "training_images": both}
    assert held_out["training_images"] < both and "val_accuracy" in held_out
    assert all_model != held_out_model  # the validation images were fitted on
    curves = read_training_curves(tmp_path / "all" / "training")
    assert sorted(curves) == ["accuracy", "loss"] and len(curves["loss"]) == 3
    val_curve = tmp_path / "all" / "training" / "plots" / "metrics" / "val" / "loss.tsv"
    assert val_curve.read_text() == "step\tloss\n"  # no epochs: dvc.yaml's plot still finds its file


def test_training_repeats_bit_for_bit(tmp_path: Path) -> None:
    write_prepared_digits(tmp_path / "prepared")
    first_model, first_summary = run_train(tmp_path, "first", TINY)
    second_model, second_summary = run_train(tmp_path, "second", TINY)
    assert first_model == second_model
    assert first_summary == second_summary


def test_bad_params_exit_non_zero_with_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params_file = tmp_path / "params.yaml"
    params_file.write_text(json.dumps({"compute": COMPUTE, "train": {**dataclasses.asdict(TINY), "epochs": 0}}))
    argv = [
        "--params",
        str(params_file),
        "--prepared-dir",
        str(tmp_path),
        "--model-out",
        str(tmp_path / "m.keras"),
        "--log-dir",
        str(tmp_path / "log"),
        "--summary-out",
        str(tmp_path / "s.json"),
    ]
    assert train.main(argv) == 1
    assert "train.epochs must be a positive integer. Received: 0" in capsys.readouterr().err
    assert not (tmp_path / "m.keras").exists() and not (tmp_path / "log").exists()


def test_training_batches_cover_every_image_once_per_epoch_in_a_seeded_order() -> None:
    labels = np.arange(50, dtype=np.uint8) % 10
    images = np.arange(50, dtype=np.uint8).reshape(50, 1, 1, 1) * np.ones((1, 28, 28, 1), dtype=np.uint8)
    dataset = training_batches(images, labels, batch_size=16, random_seed=4)
    first_epoch = [int(x) for batch, _ in dataset for x in batch.numpy()[:, 0, 0, 0]]
    second_epoch = [int(x) for batch, _ in dataset for x in batch.numpy()[:, 0, 0, 0]]
    assert sorted(first_epoch) == list(range(50)) and sorted(second_epoch) == list(range(50))
    assert first_epoch != second_epoch  # reshuffled every epoch
    again = [
        int(x) for batch, _ in training_batches(images, labels, 16, random_seed=4) for x in batch.numpy()[:, 0, 0, 0]
    ]
    assert again == first_epoch
    batch_images, batch_labels = next(iter(dataset))
    assert batch_images.shape == (16, 28, 28, 1) and batch_labels.shape == (16, 10)


def test_redrawn_copies_replace_a_share_of_the_images_drawn_afresh_each_epoch() -> None:
    """Image i is the value i everywhere, its redrawn copy 200 + i: each epoch still holds every digit once,
    with its own label, as itself or as its copy; about `redrawn_share` of them copies (none at 0, all at 1),
    a different choice each epoch, the same choice again from the same seed. 300 images in batches of 128:
    the short last batch too."""
    values = np.arange(300) % 50
    labels = (values % 10).astype(np.uint8)
    images = values.astype(np.uint8).reshape(300, 1, 1, 1) * np.ones((1, 28, 28, 1), dtype=np.uint8)
    redrawn = images + np.uint8(200)

    def epochs(share: float, seed: int, count: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
        dataset = training_batches(images, labels, 128, seed, redrawn, share)
        result = []
        for _ in range(count):  # one pass over the dataset is one epoch
            batches = [(batch.numpy()[:, 0, 0, 0], target.numpy().argmax(axis=1)) for batch, target in dataset]
            pixels = np.concatenate([pixels for pixels, _ in batches]).astype(int)
            result.append((pixels, np.concatenate([targets for _, targets in batches])))
        return result

    first, second = epochs(0.5, seed=4)
    for pixels, _ in (first, second):
        assert sorted(pixels % 200) == sorted(values) and 0.4 < (pixels >= 200).mean() < 0.6
    assert ((first[0] >= 200) != (second[0] >= 200)).any()  # chosen afresh each epoch
    assert (epochs(0.5, seed=4, count=1)[0][0] == first[0]).all()  # the same choice from the same seed
    assert not (epochs(0.5, seed=5, count=1)[0][0] == first[0]).all()
    assert (epochs(0.0, seed=4, count=1)[0][0] < 200).all()
    assert (epochs(1.0, seed=4, count=1)[0][0] >= 200).all()
    # Each image keeps its label whether redrawn or not.
    pixels, targets = first
    assert ((pixels % 200) % 10 == targets).all()


def test_redrawn_images_use_a_pen_width_per_image_from_the_seed() -> None:
    from mnist_dvc.pen_strokes import pen_widths, redrawn_with_pen
    from mnist_dvc.training import redrawn_images

    images = np.zeros((2500, 28, 28, 1), np.uint8)
    images[:, 8:20, 6:22] = 255
    params = dataclasses.replace(TINY, random_seed=3, redrawn_share=0.5, redrawn_pen_widths=(1.5, 4.0))
    redrawn = redrawn_images(images, params)
    assert redrawn.shape == images.shape
    widths = pen_widths(len(images), 1.5, 4.0, random_seed=3)
    for index in (0, 1, 1999, 2499):  # in the first, second and third piece of work
        expected = redrawn_with_pen(images[index : index + 1, ..., 0], widths[index : index + 1])
        assert (redrawn[index, ..., 0] == expected[0]).all()
    assert len({redrawn[index].tobytes() for index in range(20)}) > 3  # widths differ


def test_batches_run_without_tf_data_autotuning_and_hold_the_images_autotuning_would() -> None:
    """Autotuning off (destroying each epoch's iterator waited seconds for its sleeping thread), with the same
    batches in the same order as the autotuned pipeline gave, so the trained bytes do not change."""
    import tensorflow as tf

    labels = np.arange(40, dtype=np.uint8) % 10
    images = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1) * np.ones((1, 28, 28, 1), dtype=np.uint8)
    dataset = training_batches(images, labels, batch_size=16, random_seed=3)
    validation = validation_batches(LabelledImages(images, labels))
    assert dataset.options().autotune.enabled is False and validation.options().autotune.enabled is False
    autotuned = (
        tf.data.Dataset.from_tensor_slices((images, one_hot(labels)))
        .shuffle(40, seed=3, reshuffle_each_iteration=True)
        .batch(16)
        .prefetch(tf.data.AUTOTUNE)
    )
    for _ in range(2):  # two epochs: the reshuffle too
        for (ours, our_labels), (theirs, their_labels) in zip(dataset, autotuned, strict=True):
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
            np.testing.assert_array_equal(our_labels.numpy(), their_labels.numpy())
    assert [int(x) for batch, _ in validation for x in batch.numpy()[:, 0, 0, 0]] == list(range(40))


def test_elastic_resampling_is_the_affine_one_when_the_field_is_zero() -> None:
    """The elastic path samples the affine transform's points itself: with no displacement it gives what
    Keras's affine_transform gives, so only the field differs between the two paths."""
    from keras import ops

    from mnist_dvc.model.architectures import RandomAffine

    images = synthetic_digits(1)[0][:8, ..., np.newaxis].astype("float32") / 255.0
    transform = np.tile(np.array([[1.05, 0.1, -1.0, -0.08, 0.97, 0.6, 0.0, 0.0]], "float32"), (8, 1))
    reference = ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant")
    layer = RandomAffine(0.0, 0.0, 0.0, seed=1, max_elastic_pixels=1e-12)
    np.testing.assert_allclose(ops.convert_to_numpy(layer._affine_and_elastic(images, transform)), reference, atol=1e-6)


def test_elastic_distortion_bends_strokes_a_little_and_repeats_with_its_seed() -> None:
    from keras import ops

    from mnist_dvc.model.architectures import RandomAffine

    images = synthetic_digits(16)[0][..., np.newaxis].astype("float32") / 255.0
    distorted = [
        ops.convert_to_numpy(RandomAffine(0.0, 0.0, 0.0, seed=5, max_elastic_pixels=1.5)(images, training=True))
        for _ in range(2)
    ]
    np.testing.assert_array_equal(distorted[0], distorted[1])
    assert not np.array_equal(distorted[0], images)
    # Moved by at most 1.5 pixels: the ink stays where it was, give or take (correlation with the original).
    correlation = np.corrcoef(distorted[0].ravel(), images.ravel())[0, 1]
    assert 0.5 < correlation < 0.999
    # Not in inference.
    np.testing.assert_array_equal(RandomAffine(0.0, 0.0, 0.0, max_elastic_pixels=1.5)(images, training=False), images)


def test_stroke_width_change_thickens_and_thins_strokes_within_a_pixel_each_side() -> None:
    from keras import ops

    from mnist_dvc.model.architectures import RandomAffine

    # A vertical bar 3 pixels wide, 64 times: each copy gets its own random width change of up to 2 pixels.
    bar = np.zeros((64, 28, 28, 1), "float32")
    bar[:, 4:24, 12:15] = 1.0
    layer = RandomAffine(0.0, 0.0, 0.0, seed=3, max_stroke_width_change=2.0)
    changed = [ops.convert_to_numpy(layer(bar, training=True)) for _ in range(2)]
    # Ink across the middle row: the bar's 3 pixels, from 1 (eroded) to 5 (dilated), never beyond.
    widths = changed[0][:, 14, :, 0].sum(axis=1)
    assert widths.min() < 2.0 and widths.max() > 4.0
    assert np.all((widths >= 1.0 - 1e-5) & (widths <= 5.0 + 1e-5))
    # Only the pixels next to the bar change: ink is neither moved nor invented elsewhere.
    assert np.all(changed[0][:, :, :11] == 0) and np.all(changed[0][:, :, 16:] == 0)
    assert not np.array_equal(changed[0], changed[1])  # a new draw each batch
    again = RandomAffine(0.0, 0.0, 0.0, seed=3, max_stroke_width_change=2.0)
    np.testing.assert_array_equal(ops.convert_to_numpy(again(bar, training=True)), changed[0])  # seeded
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(bar, training=False)), bar)  # not in inference


def test_stroke_width_change_is_saved_only_when_on() -> None:
    from mnist_dvc.model.architectures import RandomAffine

    # Off, the layer's config is the one saved before the option existed: the default model keeps its bytes.
    assert "max_stroke_width_change" not in RandomAffine(10.0, 0.1, 2.0, seed=0).get_config()
    config = RandomAffine(10.0, 0.1, 2.0, seed=0, max_stroke_width_change=1.5).get_config()
    assert RandomAffine.from_config(config).max_stroke_width_change == 1.5
