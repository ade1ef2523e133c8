"""Predicting a few images at a time, fast: the trained model run by LiteRT (TensorFlow Lite) instead of Keras.

A Keras call costs milliseconds whatever the batch (TensorFlow's dispatch, and oneDNN setting up its
kernels for each new shape): about 250 images/s one at a time on this project's 2-core machine, for a
forward pass of 3.4 M multiply-adds. Keras's own export writes the same network as a LiteRT flatbuffer
whose interpreter (XNNPACK kernels, planned once) runs it at thousands of images/s one at a time, with
the same labels and probabilities within about 1e-6 of Keras's (`bench/inference.py` measures both).

    predictor = LiteRTPredictor.from_keras(load_model(Path("models/model.keras")))
    probabilities = predictor.predict(images)  # uint8 or float pixels 0-255, (n, 28, 28) or (n, 28, 28, 1)

This is for a process that keeps the model and predicts as requests come (a service, a loop): the
conversion takes a second or two, so the pipeline's stages and the `predict_images` command, which
predict their images in large batches once, keep the Keras model.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np

from mnist_dvc.digits import IMAGE_SIDE, NUM_CLASSES
from mnist_dvc.errors import PipelineError


def to_litert(model: keras.Model) -> bytes:
    """The model as a LiteRT flatbuffer (float32, inference only: augmentation and dropout are left out)."""
    with tempfile.TemporaryDirectory(prefix="mnist-litert-") as folder:
        path = Path(folder) / "model.tflite"
        model.export(str(path), format="litert", verbose=False)
        return path.read_bytes()


def _interpreter(flatbuffer: bytes, threads: int):
    import tensorflow as tf

    with warnings.catch_warnings():  # TensorFlow 2.21 announces the interpreter's move to ai-edge-litert
        warnings.simplefilter("ignore", UserWarning)
        return tf.lite.Interpreter(model_content=flatbuffer, num_threads=threads)


class LiteRTPredictor:
    """Class probabilities of digit images from a LiteRT flatbuffer of the project's model."""

    def __init__(self, flatbuffer: bytes, threads: int = 1) -> None:
        # One thread: for one image, or a few, the work of a layer is too small to share between threads
        # (measured here at batch 1: 5,500 images/s with one thread, 4,500 with two).
        self._interpreter = _interpreter(flatbuffer, threads)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        input_shape, output_shape = (tuple(int(side) for side in details["shape"]) for details in (self._input, self._output))
        if input_shape[1:] != (IMAGE_SIDE, IMAGE_SIDE, 1) or output_shape[1:] != (NUM_CLASSES,):
            raise PipelineError(f"LiteRT model: expected input (n, {IMAGE_SIDE}, {IMAGE_SIDE}, 1) and output (n, "
                                f"{NUM_CLASSES}). Received: input {input_shape}, output {output_shape}")
        self._batch_size = 0

    @classmethod
    def from_keras(cls, model: keras.Model, threads: int = 1) -> LiteRTPredictor:
        return cls(to_litert(model), threads)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (n, 10), float32, of n images: pixels 0-255 (uint8 or float), (n, 28, 28[, 1])."""
        pixels = np.asarray(images)
        if pixels.ndim == 3:
            pixels = pixels[..., np.newaxis]
        if pixels.ndim != 4 or pixels.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE, 1) or pixels.dtype.kind not in "uif":
            raise ValueError(f"Expected images of shape (n, {IMAGE_SIDE}, {IMAGE_SIDE}[, 1]) holding numbers. "
                             f"Received: shape {np.shape(images)}, dtype {np.asarray(images).dtype}")
        if len(pixels) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        if len(pixels) != self._batch_size:  # the interpreter plans its buffers for one batch size at a time
            self._interpreter.resize_tensor_input(self._input["index"], list(pixels.shape))
            self._interpreter.allocate_tensors()
            self._batch_size = len(pixels)
        self._interpreter.set_tensor(self._input["index"], pixels.astype(np.float32, copy=False))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output["index"]).copy()
