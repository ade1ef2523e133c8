"""Predicting a few images at a time, fast: the trained model run by LiteRT (TensorFlow Lite) instead of Keras.

A Keras call costs milliseconds whatever the batch (TensorFlow's dispatch, and oneDNN setting up its
kernels for each new shape): about 250 images/s one at a time on this project's 2-core machine, for a
forward pass of 3.4 M multiply-adds. Keras's own export writes the same network as a LiteRT flatbuffer
whose interpreter (XNNPACK kernels, planned once) runs it at thousands of images/s one at a time, with
the same labels and probabilities within about 1e-6 of Keras's (`bench/inference.py` measures both).

    predictor = LiteRTPredictor(Path("models/model.tflite").read_bytes())
    probabilities = predictor.predict(images)  # uint8 or float pixels 0-255, (n, 28, 28) or (n, 28, 28, 1)

The flatbuffer comes from the export stage (`models/model.tflite`), or from a Keras model in memory
(`LiteRTPredictor.from_keras`, about 1.5 s). This module imports neither TensorFlow nor Keras (the
interpreter is the `ai-edge-litert` package, a few MB), so a process that only predicts starts in well
under a second instead of TensorFlow's 3-4 s: the `predict_images` command's fast path. `OnnxPredictor`
runs the export stage's `models/model.onnx` the same way through onnxruntime.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnist_dvc.digit_arrays import IMAGE_SIDE, NUM_CLASSES
from mnist_dvc.errors import PipelineError


def _checked_pixels(images: np.ndarray) -> np.ndarray:
    """`images` as (n, 28, 28, 1), refusing other shapes and non-numbers."""
    pixels = np.asarray(images)
    if pixels.ndim == 3:
        pixels = pixels[..., np.newaxis]
    if pixels.ndim != 4 or pixels.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE, 1) or pixels.dtype.kind not in "uif":
        raise ValueError(
            f"Expected images of shape (n, {IMAGE_SIDE}, {IMAGE_SIDE}[, 1]) holding numbers. "
            f"Received: shape {np.shape(images)}, dtype {np.asarray(images).dtype}"
        )
    return pixels


def _interpreter(flatbuffer: bytes, threads: int, source: str) -> Any:  # LiteRT's Interpreter, which has no types
    from ai_edge_litert.interpreter import Interpreter

    try:
        return Interpreter(model_content=flatbuffer, num_threads=threads)
    except ValueError as error:
        raise PipelineError(
            f"{source}: expected a LiteRT (.tflite) flatbuffer. Received: {len(flatbuffer)} "
            f"bytes it cannot read ({error})"
        ) from None


class LiteRTPredictor:
    """Class probabilities of digit images from a LiteRT flatbuffer of the project's model."""

    def __init__(self, flatbuffer: bytes, threads: int = 1, source: str = "LiteRT model") -> None:
        """`source` names the flatbuffer in error messages (its file, if it came from one)."""
        # One thread: for one image, or a few, the work of a layer is too small to share between threads
        # (measured here at batch 1: 5,500 images/s with one thread, 4,500 with two).
        self._interpreter = _interpreter(flatbuffer, threads, source)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        input_shape, output_shape = (
            tuple(int(side) for side in details["shape"]) for details in (self._input, self._output)
        )
        if input_shape[1:] != (IMAGE_SIDE, IMAGE_SIDE, 1) or output_shape[1:] != (NUM_CLASSES,):
            raise PipelineError(
                f"{source}: expected input (n, {IMAGE_SIDE}, {IMAGE_SIDE}, 1) and output (n, "
                f"{NUM_CLASSES}). Received: input {input_shape}, output {output_shape}"
            )
        self._batch_size = 0

    @classmethod
    def from_keras(cls, model: Any, threads: int = 1) -> LiteRTPredictor:  # a keras.Model (not imported here)
        from mnist_dvc.model.export import to_litert

        return cls(to_litert(model), threads)

    def predict(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Probabilities (n, 10), float32, of n images: pixels 0-255 (uint8 or float), (n, 28, 28[, 1]);
        at most `batch_size` images per call of the interpreter (None: all at once)."""
        pixels = _checked_pixels(images)
        if len(pixels) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        if batch_size is not None and len(pixels) > batch_size:
            return np.concatenate(
                [self.predict(pixels[start : start + batch_size]) for start in range(0, len(pixels), batch_size)]
            )
        if len(pixels) != self._batch_size:  # the interpreter plans its buffers for one batch size at a time
            self._interpreter.resize_tensor_input(self._input["index"], list(pixels.shape))
            self._interpreter.allocate_tensors()
            self._batch_size = len(pixels)
        self._interpreter.set_tensor(self._input["index"], pixels.astype(np.float32, copy=False))
        self._interpreter.invoke()
        probabilities: np.ndarray = self._interpreter.get_tensor(self._output["index"]).copy()
        return probabilities


class OnnxPredictor:
    """Class probabilities of digit images from the ONNX model, through onnxruntime's CPU provider."""

    def __init__(self, onnx_model: bytes, threads: int = 1) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.log_severity_level = 3  # errors only
        self._session = onnxruntime.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])
        self._input_name = self._session.get_inputs()[0].name

    def predict(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """As `LiteRTPredictor.predict`: probabilities (n, 10), float32, at most `batch_size` images per run."""
        pixels = _checked_pixels(images).astype(np.float32, copy=False)
        if len(pixels) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        step = batch_size or len(pixels)
        return np.concatenate(
            [
                self._session.run(None, {self._input_name: pixels[start : start + step]})[0]
                for start in range(0, len(pixels), step)
            ]
        )
