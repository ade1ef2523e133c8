"""The prepared arrays that preprocess writes and train, evaluate and predict read (`data/prepared/`).

`<split>_images.npy` (uint8, (n, 28, 28, 1)) and `<split>_labels.npy` (uint8, (n,)) for the labelled splits,
and `predict_images.npy` for the images to label. Reading checks that a file is what preprocess writes.
"""

from __future__ import annotations

import io
import logging
import math
import tokenize
from pathlib import Path

import numpy as np

from mnist_dvc.atomic_files import atomic_directory
from mnist_dvc.digit_arrays import IMAGE_SIDE, NUM_CLASSES, LabelledImages, check_labelled_images, checked_images
from mnist_dvc.errors import PipelineError
from mnist_dvc.input_files import read_input_bytes

logger = logging.getLogger(__name__)

PREPARED_SPLITS = ("train", "val", "test")
PREDICT_SPLIT = "predict"
IMAGES_SHAPE = f"(n, {IMAGE_SIDE}, {IMAGE_SIDE}, 1)"


def write_prepared(splits: dict[str, LabelledImages], predict_images: np.ndarray, out_dir: Path) -> None:
    """Write `<split>_images.npy` and `<split>_labels.npy` for each split, and `predict_images.npy`,
    replacing `out_dir` whole."""
    with atomic_directory(out_dir) as staging:
        for name, split in splits.items():
            np.save(staging / f"{name}_images.npy", split.images, allow_pickle=False)
            np.save(staging / f"{name}_labels.npy", split.labels, allow_pickle=False)
        np.save(staging / f"{PREDICT_SPLIT}_images.npy", predict_images, allow_pickle=False)
    for name, split in splits.items():
        counts = np.bincount(split.labels, minlength=NUM_CLASSES).tolist()
        logger.info("wrote %s/%s_{images,labels}.npy: %s, per class %s", out_dir, name, split.images.shape, counts)
    logger.info("wrote %s/%s_images.npy: %s", out_dir, PREDICT_SPLIT, predict_images.shape)


def read_prepared(prepared_dir: Path, split: str) -> LabelledImages:
    """Read one prepared split back, checking it is what this stage writes."""
    images_path = prepared_dir / f"{split}_images.npy"
    labels_path = prepared_dir / f"{split}_labels.npy"
    images = _load_array(images_path)
    labels = _load_array(labels_path)
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE, 1):
        raise PipelineError(f"{images_path}: expected shape {IMAGES_SHAPE}. Received: {images.shape}")
    checked = check_labelled_images(images[..., 0], labels, f"{images_path} + {labels_path.name}")
    return checked


def read_prepared_images(prepared_dir: Path, split: str = PREDICT_SPLIT) -> np.ndarray:
    """Read the unlabelled images of `split` (uint8 (n, 28, 28, 1)), checking their shape."""
    images_path = prepared_dir / f"{split}_images.npy"
    images = _load_array(images_path)
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE, 1):
        raise PipelineError(f"{images_path}: expected shape {IMAGES_SHAPE}. Received: {images.shape}")
    return checked_images(images[..., 0], str(images_path))


def _load_array(path: Path) -> np.ndarray:
    """The array in the .npy file at `path`, its header's shape checked against the file's real size before
    anything is allocated (numpy would allocate what a damaged header declares), and never a pickle."""
    payload = read_input_bytes(path, "a prepared array (run the preprocess stage)")
    stream = io.BytesIO(payload)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _fortran_order, dtype = read_header(stream)
        if dtype.hasobject:
            raise ValueError(f"an array of Python objects ({dtype}), which only a pickle can hold")
        declared = stream.tell() + math.prod(shape) * dtype.itemsize
        if declared != len(payload):
            raise ValueError(f"{len(payload)} bytes, where its header (shape {shape}, {dtype}) says {declared}")
        array: np.ndarray = np.load(io.BytesIO(payload), allow_pickle=False)
        return array
    except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError) as error:  # numpy parses the header
        # as a Python literal: a damaged one can be a SyntaxError or TokenError
        raise PipelineError(f"{path}: expected a .npy array. Received: unreadable file ({error})") from None
