"""Saving and loading the trained model as a `.keras` archive whose bytes are a function of the model alone.

Keras writes the save time (`date_saved`) into `metadata.json`, the current time into each zip entry,
and Python object addresses (`shared_object_id`) into `config.json`, so two saves of the same weights
differ; it also records the Python module that defines each custom layer, so moving the code would
change the file. We rewrite the archive without the save time, with the shared-object ids numbered in
order of appearance, our custom layers' module given as their registration package (`mnist`: Keras
finds registered layers by their registered name, `mnist>RandomAffine`, never by module), sorted
entries and a fixed entry timestamp; `keras.models.load_model` reads it as usual.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import keras

import mnist_dvc.model.architectures  # noqa: F401  (registers the custom layers that loading needs)
from mnist_dvc.archives import ARCHIVE_ERRORS, check_archive
from mnist_dvc.atomic_files import atomic_file
from mnist_dvc.digit_arrays import NUM_CLASSES
from mnist_dvc.errors import PipelineError
from mnist_dvc.input_files import what_is_at
from mnist_dvc.model.architectures import IMAGE_SHAPE, REGISTRATION_PACKAGE

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_PACKAGE = REGISTRATION_PACKAGE
_VOLATILE_METADATA_KEYS = ("date_saved",)


def normalise_keras_archive(archive: bytes) -> bytes:
    """Return the archive with its volatile parts removed: same content, reproducible bytes."""
    output = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(output, "w") as target:
        for name in sorted(source.namelist()):
            content = source.read(name)
            if name == "metadata.json":
                metadata = {
                    key: value for key, value in json.loads(content).items() if key not in _VOLATILE_METADATA_KEYS
                }
                content = json.dumps(metadata, sort_keys=True).encode()
            elif name == "config.json":
                config = place_custom_objects_in_package(renumber_shared_objects(json.loads(content)))
                content = json.dumps(config, sort_keys=True).encode()
            entry = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, content)
    return output.getvalue()


def renumber_shared_objects(config: Any) -> Any:
    """Replace each distinct `shared_object_id` (an object address) by 0, 1, 2... in order of appearance.

    The ids only tell Keras which entries are the same object, so a consistent renumbering keeps that.
    """
    numbering: dict[int, int] = {}

    def visit(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: numbering.setdefault(value, len(numbering)) if key == "shared_object_id" else visit(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [visit(item) for item in node]
        return node

    return visit(config)


def place_custom_objects_in_package(config: Any) -> Any:
    """Give every object registered under our package (`mnist>...`) the module `mnist`, not its code's path."""
    if isinstance(config, dict):
        placed = {key: place_custom_objects_in_package(value) for key, value in config.items()}
        if str(placed.get("registered_name", "")).startswith(f"{_PACKAGE}>") and "module" in placed:
            placed["module"] = _PACKAGE
        return placed
    if isinstance(config, list):
        return [place_custom_objects_in_package(item) for item in config]
    return config


def save_model(model: keras.Model, path: Path) -> None:
    """Save `model` (without optimizer state) to `path` atomically, in reproducible bytes."""
    with atomic_file(path) as temporary:
        model.save(temporary, include_optimizer=False)
        temporary.write_bytes(normalise_keras_archive(temporary.read_bytes()))


def load_model(path: Path) -> keras.Model:
    """Load a model saved by `save_model`, checking it maps (n, 28, 28, 1) pixels to 10 class probabilities."""
    found = what_is_at(path)
    if found != "a file":
        raise PipelineError(f"{path}: expected a trained model (run the train stage). Received: {found}")
    expected = "expected a .keras model archive. Received:"
    try:
        with zipfile.ZipFile(path) as archive:  # bounded inflation and safe names, before Keras reads it
            check_archive(archive, str(path))
    except ARCHIVE_ERRORS as error:
        raise PipelineError(f"{path}: {expected} unreadable file ({error})") from None
    try:
        # safe_mode (Keras's default, stated here because it matters): a Lambda layer's Python code is refused.
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # noqa: BLE001  (Keras raises many types for a corrupt archive)
        if "safe_mode" in str(error):
            raise PipelineError(
                f"{path}: {expected} a model holding Python code (a Lambda layer), which Keras's "
                "safe mode refuses to run; only models of this project's architectures load"
            ) from None
        raise PipelineError(f"{path}: {expected} unreadable file ({error})") from None
    if tuple(model.input_shape[1:]) != IMAGE_SHAPE or tuple(model.output_shape[1:]) != (NUM_CLASSES,):
        raise PipelineError(
            f"{path}: expected a model from (n, {', '.join(map(str, IMAGE_SHAPE))}) to (n, {NUM_CLASSES}). "
            f"Received: {model.input_shape} to {model.output_shape}"
        )
    return model
