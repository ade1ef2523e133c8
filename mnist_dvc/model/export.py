"""The trained model in the formats people deploy, each checked against the Keras model it came from.

- ONNX (`model.onnx`), through Keras's own `model.export(format="onnx")` (tf2onnx), for onnxruntime and
  every runtime that reads ONNX;
- LiteRT, float32 (`model.tflite`), through Keras's `model.export(format="litert")`: what
  `mnist_dvc.model.serving` runs, and the `predict_images` command's fast path;
- LiteRT, int8 (`model_int8.tflite`): weights and activations in 8 bits (inputs and outputs stay float), for
  phones and microcontrollers, through TensorFlow Lite's converter from a SavedModel, with activation
  ranges measured on validation images.

Every writer here is a function of the model's weights alone, so the same model gives the same bytes,
with one exception made safe: the int8 model's activation ranges are measured by TensorFlow Lite's own
float kernels, whose summation order (and so the last bits of a range) can depend on the CPU (its cache
sizes set Eigen's blocking). Each measured range is widened outward to 8 significant bits before
quantising, so the last bits no longer reach the file (a range would have to sit within about 1e-7 of a
step of 1/256 of itself for two CPUs to round it apart).
"""

from __future__ import annotations

import logging
import math
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np

from mnist_dvc.digit_arrays import IMAGE_SIDE

logger = logging.getLogger(__name__)

RANGE_SIGNIFICANT_BITS = 8


def to_litert(model: keras.Model) -> bytes:
    """The model as a float32 LiteRT flatbuffer (inference only: augmentation and dropout are left out)."""
    with tempfile.TemporaryDirectory(prefix="mnist-litert-") as folder:
        path = Path(folder) / "model.tflite"
        model.export(str(path), format="litert", verbose=False)
        return path.read_bytes()


def to_onnx(model: keras.Model) -> bytes:
    """The model as ONNX (float32, opset chosen by tf2onnx), its batch size left open.

    tf2onnx numbers the names it generates with a counter that lives as long as the process, so a second
    export in one process writes other names (same graph); a stage exports once per process.
    """
    # Keras traces the export from the model's known input shape; a loaded model knows it once called.
    model(np.zeros((1, IMAGE_SIDE, IMAGE_SIDE, 1), np.float32), training=False)
    with tempfile.TemporaryDirectory(prefix="mnist-onnx-") as folder:
        path = Path(folder) / "model.onnx"
        with warnings.catch_warnings():  # tf2onnx probes numpy for aliases that numpy 2 deprecates
            warnings.simplefilter("ignore", FutureWarning)
            model.export(str(path), format="onnx", verbose=False)
        return path.read_bytes()


def widen_range(value: float, upward: bool, significant_bits: int = RANGE_SIGNIFICANT_BITS) -> float:
    """`value` rounded away from the inside of a range to `significant_bits` bits: up for a maximum, down
    for a minimum. Exact in binary floating point, so the same on every CPU."""
    if value == 0.0 or not math.isfinite(value):
        return value
    _, exponent = math.frexp(value)  # value = mantissa * 2**exponent, 0.5 <= |mantissa| < 1
    step = math.ldexp(1.0, exponent - significant_bits)
    steps = math.ceil(value / step) if upward else math.floor(value / step)
    return float(np.float32(steps * step))


def widen_calibrated_ranges(calibrated: bytes) -> tuple[bytes, int]:
    """The calibrated flatbuffer with each tensor's recorded min/max widened by `widen_range`, and how many
    tensors had ranges."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    ranged = 0
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            quantization = tensor.quantization
            if quantization is None or quantization.min is None or len(quantization.min) == 0:
                continue
            quantization.min = [widen_range(float(value), upward=False) for value in quantization.min]
            quantization.max = [widen_range(float(value), upward=True) for value in quantization.max]
            ranged += 1
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), ranged


def calibrated_float_model(model: keras.Model, calibration_images: np.ndarray) -> bytes:
    """The model as a float LiteRT flatbuffer whose tensors record the min/max that `calibration_images`
    (n, 28, 28, 1) reach: TensorFlow Lite's converter stopped after calibration, before quantising."""
    import tensorflow as tf

    samples = np.asarray(calibration_images, np.float32)
    with tempfile.TemporaryDirectory(prefix="mnist-int8-") as folder:
        # From a SavedModel: TensorFlow Lite's converter reads it directly (from Keras 3 models it does not).
        saved_model = Path(folder) / "saved_model"
        model.export(str(saved_model), format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = lambda: ([samples[index : index + 1]] for index in range(len(samples)))
        # A private switch of the pinned TensorFlow (2.21); tests/test_export.py checks the result.
        converter._experimental_calibrate_only = True  # noqa: SLF001
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return bytes(converter.convert())


def to_int8_litert(model: keras.Model, calibration_images: np.ndarray) -> bytes:
    """The model as an int8 LiteRT flatbuffer: int8 weights (per channel) and activations, float input
    (pixels 0-255) and output (probabilities). `calibration_images` (n, 28, 28, 1) set the activation ranges,
    which are widened (see the module's docstring) before the quantiser that the converter would run is
    run on them."""
    import tensorflow as tf
    from tensorflow.lite.python import convert as litert_convert

    widened, ranged = widen_calibrated_ranges(calibrated_float_model(model, calibration_images))
    logger.info("int8: activation ranges of %d tensors measured on %d images", ranged, len(calibration_images))
    return bytes(litert_convert.mlir_quantize(widened, input_data_type=tf.float32, output_data_type=tf.float32))
