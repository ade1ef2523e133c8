"""The export stage: ONNX, float LiteRT and int8 LiteRT files that predict what the Keras model predicts."""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from mnist_dvc.errors import ParamsError, PipelineError
from mnist_dvc.model.export import (
    calibrated_float_model,
    to_int8_litert,
    to_litert,
    to_onnx,
    widen_calibrated_ranges,
    widen_range,
)
from mnist_dvc.model.files import load_model
from mnist_dvc.model.serving import LiteRTPredictor, OnnxPredictor
from mnist_dvc.params.export import ExportParams
from mnist_dvc.params.loading import parse_section
from stages.export import FormatScore, check_scores, score_format
from tests.conftest import PROJECT_ROOT, synthetic_digits

DEFAULTS = {
    "calibration_images": 500,
    "min_float_label_agreement": 0.9999,
    "max_int8_accuracy_change": 0.001,
    "batch_size": 1024,
}


# --- widening the calibrated ranges -----------------------------------------------------------------


@pytest.mark.parametrize("value", [8.011271, 6.1125193, 255.0, 1e-3, -4.75, -0.0123, 3.0e7, 1.0, 0.5])
def test_a_widened_range_holds_the_value_within_one_step_of_8_bits(value: float) -> None:
    maximum, minimum = widen_range(value, upward=True), widen_range(value, upward=False)
    assert minimum <= value <= maximum
    assert maximum - minimum <= abs(value) * 2.0**-7
    for bound in (maximum, minimum):  # 8 significant bits: a multiple of the step, and already widened
        mantissa, _ = math.frexp(bound)
        assert (mantissa * 2**8).is_integer()
        assert widen_range(bound, upward=True) == widen_range(bound, upward=False) == bound


def test_values_a_few_ulps_apart_widen_to_the_same_bound() -> None:
    """What makes the int8 file the same on CPUs whose float kernels sum in another order."""
    values = np.random.default_rng(0).uniform(0.01, 100.0, 2000).astype(np.float32)
    nudged = np.nextafter(np.nextafter(values, np.float32(np.inf)), np.float32(np.inf))
    same = [widen_range(float(a), True) == widen_range(float(b), True) for a, b in zip(values, nudged, strict=True)]
    assert sum(same) >= len(values) - 1  # a pair straddles a step only with odds of about 1 in 30,000


def test_zero_and_non_finite_bounds_are_kept() -> None:
    assert widen_range(0.0, upward=True) == 0.0 and widen_range(0.0, upward=False) == 0.0
    assert widen_range(math.inf, upward=True) == math.inf


# --- params and checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("calibration_images", 0, "export.calibration_images must be a positive integer. Received: 0"),
        ("min_float_label_agreement", 1.5, "export.min_float_label_agreement must be a fraction from 0 to 1"),
        ("max_int8_accuracy_change", -0.1, "export.max_int8_accuracy_change must be a fraction from 0 to 1"),
        ("batch_size", 0, "export.batch_size must be a positive integer. Received: 0"),
    ],
)
def test_bad_export_params_are_refused_by_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ParamsError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_section({"export": {**DEFAULTS, key: value}}, "export", ExportParams, "params.yaml")


def test_scores_count_accuracy_and_agreement_with_keras() -> None:
    labels = np.array([0, 1, 2, 3])
    keras_labels = np.array([0, 1, 2, 4])
    probabilities = np.eye(10)[[0, 1, 5, 4]]
    score = score_format("ONNX", 100, labels, keras_labels, probabilities)
    assert score == FormatScore("ONNX", 100, 0.5, 0.75)
    assert score.as_json() == {"bytes": 100, "test_accuracy": 0.5, "label_agreement": 0.75}


def test_each_failed_check_names_its_format_key_and_figure() -> None:
    params = ExportParams(**DEFAULTS)
    good_float, good_int8 = FormatScore("ONNX", 1, 0.9961, 1.0), FormatScore("LiteRT int8", 1, 0.9955, 0.999)
    check_scores(0.9961, [good_float], good_int8, params)  # -0.06 points: within 0.1
    with pytest.raises(
        PipelineError,
        match=r"export, ONNX: expected the Keras model's label for at least 99\.99% of "
        r"the test images \(export\.min_float_label_agreement\)\. Received: 99\.98%",
    ):
        check_scores(0.9961, [FormatScore("ONNX", 1, 0.9961, 0.9998)], good_int8, params)
    for int8_accuracy, change in ((0.9948, "-0.13"), (0.9975, "+0.14")):
        with pytest.raises(
            PipelineError,
            match=rf"export, LiteRT int8: expected a test accuracy within 0\.10 points "
            rf"of the Keras model's 99\.61% \(export\.max_int8_accuracy_change\)\. "
            rf"Received: .* \({re.escape(change)} points\)",
        ):
            check_scores(0.9961, [good_float], FormatScore("LiteRT int8", 1, int8_accuracy, 0.99), params)


# --- the formats, on a real model ----------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic-digit model of tests/trained_model.py, trained in a process of its own (so its bytes do not
    depend on test order or on what earlier tests did to TensorFlow in this worker)."""
    path = tmp_path_factory.mktemp("trained") / "model.keras"
    subprocess.run(
        [sys.executable, "-m", "tests.trained_model", str(path)], cwd=PROJECT_ROOT, check=True, capture_output=True
    )
    return path


@pytest.fixture(scope="module")
def trained(trained_model_file: Path) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """That model loaded as the pipeline loads it, and held-out digits of the same kind."""
    held_out, held_out_labels = synthetic_digits(per_class=20, seed=2)
    return load_model(trained_model_file), held_out[..., np.newaxis], held_out_labels


def test_the_fixture_model_is_the_file_the_int8_bounds_were_measured_on(trained_model_file: Path) -> None:
    """Trained in its own process with pinned compute, the fixture's model is the same file every run, in any test
    order: the one the int8 bounds below were measured on. (If TensorFlow or the architecture changes, measure the
    bounds again and record the new md5.)"""
    assert hashlib.md5(trained_model_file.read_bytes()).hexdigest() == FIXTURE_MODEL_MD5


def test_onnx_predicts_keras_probabilities(trained: tuple[keras.Model, np.ndarray, np.ndarray]) -> None:
    model, images, _ = trained
    expected = model.predict(images, verbose=0)
    onnx_model = to_onnx(model)
    import onnx

    onnx.checker.check_model(onnx.load_from_string(onnx_model))
    for batch_size in (1, 7, 1024):
        np.testing.assert_allclose(OnnxPredictor(onnx_model).predict(images, batch_size), expected, atol=1e-5)
    np.testing.assert_allclose(OnnxPredictor(onnx_model, threads=2).predict(images[..., 0]), expected, atol=1e-5)


FIXTURE_MODEL_MD5 = "08922c8891c0a9f49237ddedba95ccca"

# The int8 bounds, measured on the fixture's model (the same file every run: see the test above) through the
# export stage's own functions. Each has a reason beyond the measurement:
# - int8 outputs are multiples of 1/256, each rounded by at most half a step, so ten of them sum to 1 within
#   5 steps from rounding alone (measured: 2 steps).
# - one probability moves at most 5 steps from Keras's (measured: 0.0128, 3.3 steps): 8-bit activations
#   through three convolutions and two dense layers, each within a step of its float value.
# - a decision with a margin over 0.3 (77 steps) cannot be turned by errors of that size: all of them keep
#   Keras's label (measured: 147 such decisions of 200, all kept; and all 200 labels the same).
INT8_SUM_STEPS = 5
INT8_PROBABILITY_STEPS = 5
CLEAR_MARGIN = 0.3
CLEAR_DECISIONS_MEASURED = 147


def test_int8_is_int8_and_predicts_nearly_what_keras_predicts(
    trained: tuple[keras.Model, np.ndarray, np.ndarray],
) -> None:
    model, images, _ = trained
    keras_probabilities = model.predict(images, verbose=0)
    top_two = np.sort(keras_probabilities, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > CLEAR_MARGIN
    # The same model every run; a near-tie may round the other way under another thread count: a few.
    assert abs(int(clear.sum()) - CLEAR_DECISIONS_MEASURED) <= 3
    int8_model = to_int8_litert(model, images[:100])
    assert int8_model == to_int8_litert(model, images[:100])  # the same bytes each time
    float_size = len(to_litert(model))
    assert len(int8_model) < float_size / 3  # int8 weights: a quarter of the float32 file, plus the graph

    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=int8_model).get_tensor_details()
    int8_elements = sum(int(np.prod(tensor["shape"])) for tensor in details if np.dtype(tensor["dtype"]) == np.int8)
    float_elements = sum(int(np.prod(tensor["shape"])) for tensor in details if np.dtype(tensor["dtype"]) == np.float32)
    assert int8_elements > 10 * float_elements  # weights and activations in 8 bits; float only at the edges
    probabilities = LiteRTPredictor(int8_model).predict(images)
    assert probabilities.shape == (len(images), 10) and probabilities.dtype == np.float32
    np.testing.assert_array_equal(np.round(probabilities * 256) / 256, probabilities)  # multiples of 1/256
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=INT8_SUM_STEPS / 256)
    np.testing.assert_allclose(probabilities, keras_probabilities, atol=INT8_PROBABILITY_STEPS / 256)
    np.testing.assert_array_equal(probabilities.argmax(axis=1)[clear], keras_probabilities.argmax(axis=1)[clear])


def test_widened_ranges_are_the_only_change_to_a_calibrated_model(
    trained: tuple[keras.Model, np.ndarray, np.ndarray],
) -> None:
    from tensorflow.lite.tools import flatbuffer_utils

    model, images, _ = trained
    calibrated = calibrated_float_model(model, images[:50])
    widened, ranged = widen_calibrated_ranges(calibrated)
    assert ranged >= 5
    before, after = (flatbuffer_utils.convert_bytearray_to_object(bytearray(blob)) for blob in (calibrated, widened))
    changed = 0
    for old, new in zip(before.subgraphs[0].tensors, after.subgraphs[0].tensors, strict=True):
        assert old.name == new.name and list(old.shape) == list(new.shape)
        if old.quantization is not None and old.quantization.min is not None and len(old.quantization.min):
            assert all(n <= o for o, n in zip(old.quantization.min, new.quantization.min, strict=True))
            assert all(n >= o for o, n in zip(old.quantization.max, new.quantization.max, strict=True))
            changed += list(old.quantization.max) != list(new.quantization.max)
    assert changed >= 1  # measured maxima are rarely on the 8-bit grid already


# --- the stage, in the small-profile pipeline -------------------------------------------------------


@pytest.mark.slow
def test_the_stage_writes_checked_formats_that_runtimes_load(small_pipeline: Path) -> None:
    import onnxruntime

    repo = small_pipeline
    summary = json.loads((repo / "metrics/export.json").read_text())
    validation_images = len(np.load(repo / "data/prepared/val_labels.npy"))
    assert summary["test_images"] == 200 and summary["calibration_images"] == validation_images < 100
    for name, path in (
        ("onnx", "models/model.onnx"),
        ("litert", "models/model.tflite"),
        ("litert_int8", "models/model_int8.tflite"),
    ):
        assert summary[name]["bytes"] == (repo / path).stat().st_size
    assert summary["onnx"]["label_agreement"] == summary["litert"]["label_agreement"] == 1.0
    assert summary["onnx"]["test_accuracy"] == summary["keras"]["test_accuracy"]
    test_images = np.load(repo / "data/prepared/test_images.npy")
    keras_probabilities = load_model(repo / "models/model.keras").predict(test_images, verbose=0)
    session = onnxruntime.InferenceSession(str(repo / "models/model.onnx"), providers=["CPUExecutionProvider"])
    onnx_output = session.run(None, {session.get_inputs()[0].name: test_images.astype(np.float32)})[0]
    np.testing.assert_allclose(onnx_output, keras_probabilities, atol=1e-5)
    litert_output = LiteRTPredictor((repo / "models/model.tflite").read_bytes()).predict(test_images)
    np.testing.assert_allclose(litert_output, keras_probabilities, atol=1e-5)


@pytest.mark.slow
def test_run_by_hand_a_failure_on_its_second_file_leaves_every_previous_output_in_place(
    small_pipeline: Path, tmp_path: Path
) -> None:
    """Run by its command line (DVC clears outputs first; a person does not), the stage moves its four outputs into
    place together or not at all: the float LiteRT file cannot be written (its folder is a file), so the ONNX file,
    written before it, must not replace the previous run's."""
    repo = Path(shutil.copytree(small_pipeline, tmp_path / "repo", symlinks=True))
    previous = {
        "models/model.onnx": b"previous onnx",
        "models/model_int8.tflite": b"previous int8",
        "metrics/export.json": b"{}\n",
    }
    for relative, content in previous.items():
        (repo / relative).write_bytes(content)
    (repo / "models/blocked").write_text("a file where the folder of --litert-out should be")
    command = [
        sys.executable,
        "-m",
        "stages.export",
        "--params",
        "params.yaml",
        "--prepared-dir",
        "data/prepared",
        "--model",
        "models/model.keras",
        "--onnx-out",
        "models/model.onnx",
        "--litert-out",
        "models/blocked/model.tflite",
        "--int8-out",
        "models/model_int8.tflite",
        "--metrics-out",
        "metrics/export.json",
    ]
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)
    assert result.returncode == 1, result.stderr
    assert "error: models/blocked/model.tflite: expected to write it" in result.stderr
    assert {relative: (repo / relative).read_bytes() for relative in previous} == previous
    assert not [path.name for path in (repo / "models").iterdir() if ".tmp" in path.name]
