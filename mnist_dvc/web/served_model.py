"""The model the server answers with: the export stage's LiteRT file, reloaded when a new one is in place.

The export stage writes `models/model.tflite` to a temporary file and renames it into place, so the path
always names a complete file: the old one until the rename, the new one after. Each request looks at the
file's identity (inode, size, modification time: one `stat`); when it changed, the new file is read and
checked (LiteRT must load it, with the project's input and output shapes) before it replaces the one in
memory. Until then, and for good if the new file is unreadable, the previous model keeps answering.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mnist_dvc.errors import PipelineError
from mnist_dvc.model.serving import LiteRTPredictor

logger = logging.getLogger(__name__)

MODEL_PATH = "models/model.tflite"  # relative to the repository, as dvc.yaml's export stage writes it


@dataclasses.dataclass(frozen=True)
class FileIdentity:
    inode: int
    size: int
    modified_ns: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity | None:
        try:
            found = path.stat()
        except OSError:
            return None
        return cls(found.st_ino, found.st_size, found.st_mtime_ns)


@dataclasses.dataclass
class LoadedModel:
    """One model file in memory. LiteRT's interpreter is not thread-safe: `predict` takes its lock."""

    path: Path
    md5: str
    identity: FileIdentity
    loaded_at: float
    predictor: LiteRTPredictor
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        with self.lock:
            return self.predictor.predict(pixels)


def load_model_file(path: Path) -> LoadedModel:
    """Read and check a LiteRT file; raises PipelineError naming the file and the problem."""
    identity = FileIdentity.of(path)
    try:
        flatbuffer = path.read_bytes()
    except OSError as error:
        raise PipelineError(f"{path}: expected the export stage's LiteRT model. Received: {error}") from None
    if identity is None:
        raise PipelineError(f"{path}: expected the export stage's LiteRT model. Received: no file")
    predictor = LiteRTPredictor(flatbuffer, threads=1, source=str(path))
    return LoadedModel(path, hashlib.md5(flatbuffer).hexdigest(), identity, time.time(), predictor)


class ModelSlot:
    """The current model of `repository`/models/model.tflite, or None before one exists."""

    def __init__(self, repository: Path, model_path: Path | None = None) -> None:
        self.repository = repository
        self.path = model_path or repository / MODEL_PATH
        self._current: LoadedModel | None = None
        self._refused: FileIdentity | None = None  # a file that failed to load: not retried until it changes
        self.last_error: str | None = None
        self._swap = threading.Lock()

    def current(self) -> LoadedModel | None:
        """The model to answer with now, loading the file first if it changed since the last look."""
        identity = FileIdentity.of(self.path)
        model = self._current
        if identity is None or (model is not None and identity == model.identity) or identity == self._refused:
            return model
        with self._swap:  # one thread loads; the others wait for it rather than loading the same file again
            model = self._current
            identity = FileIdentity.of(self.path)
            if identity is None or (model is not None and identity == model.identity) or identity == self._refused:
                return model
            try:
                loaded = load_model_file(self.path)
            except PipelineError as error:
                self._refused, self.last_error = identity, str(error)
                logger.error("%s (still serving %s)", error, model.md5 if model else "no model")
                return model
            if loaded.identity != identity:  # replaced again while being read: take it next time
                return model
            self._current, self.last_error = loaded, None
            logger.info("serving %s (md5 %s)", self.path, loaded.md5)
            return loaded


def recorded_facts(repository: Path, model: LoadedModel | None) -> dict[str, Any]:
    """What `GET /api/health` reports of the model: its file, md5, the md5 dvc.lock records for that file and
    the test accuracy metrics/export.json gives for it (only when the served file is the recorded one)."""
    relative = MODEL_PATH
    facts: dict[str, Any] = {"model_file": relative, "md5": model.md5 if model else None}
    lock_md5 = None
    try:
        lock = yaml.safe_load((repository / "dvc.lock").read_text(encoding="utf-8")) or {}
        for out in lock.get("stages", {}).get("export", {}).get("outs", []):
            if out.get("path") == relative:
                lock_md5 = out.get("md5")
    except (OSError, yaml.YAMLError, AttributeError):
        pass
    facts["dvc_lock_md5"] = lock_md5
    accuracy = None
    if model is not None and lock_md5 == model.md5:
        try:
            exported = json.loads((repository / "metrics/export.json").read_text(encoding="utf-8"))
            accuracy = exported["litert"]["test_accuracy"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    facts["test_accuracy"] = accuracy
    facts["matches_dvc_lock"] = model is not None and lock_md5 == model.md5
    if model is not None:
        facts["loaded_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(model.loaded_at))
    return facts


def default_repository() -> Path:
    """The checkout the server runs in: the current folder (`make serve` runs from the repository root)."""
    return Path(os.getcwd())
