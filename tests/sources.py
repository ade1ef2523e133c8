"""Test helpers for the data sources: Kaggle-format CSVs, IDX fixture files, and a loopback HTTP mirror."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from mnist_dvc.formats import idx
from mnist_dvc.sources.download import ExpectedFile


def kaggle_csv(images: np.ndarray, labels: np.ndarray | None) -> bytes:
    """Kaggle's digit-recognizer CSV for uint8 images (n, 28, 28): train.csv with labels, test.csv without."""
    header = [f"pixel{index}" for index in range(784)]
    rows = images.reshape(len(images), -1).astype(np.int64)
    if labels is not None:
        header = ["label", *header]
        rows = np.column_stack([labels.astype(np.int64), rows])
    lines = [",".join(header)] + [",".join(map(str, row)) for row in rows.tolist()]
    return ("\n".join(lines) + "\n").encode()


def gzipped_idx_files(
    train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray
) -> dict[str, bytes]:
    """The four MNIST `.gz` file names mapped to gzip'd IDX bytes of the given arrays (mtime 0: stable bytes)."""
    arrays = (train_images, train_labels, test_images, test_labels)
    return {
        f"{name}.gz": gzip.compress(idx.encode_idx(array), mtime=0)
        for name, array in zip(idx.RAW_FILE_NAMES[:4], arrays, strict=True)
    }


def expected_files(files: dict[str, bytes]) -> tuple[ExpectedFile, ...]:
    """ExpectedFile entries (name, size, sha256) for fixture files, in the order given."""
    return tuple(
        ExpectedFile(name, len(payload), hashlib.sha256(payload).hexdigest()) for name, payload in files.items()
    )


PRIVATE_USER, PRIVATE_PASSWORD = "student", "p@ss:w/rd"


class _MirrorHandler(http.server.BaseHTTPRequestHandler):
    """Serves `/<behaviour>/<file>`: good, missing (404), corrupt (one byte flipped), stall (no answer),
    flaky (503 on the first request for each file, then good), short (announces the full size, sends half),
    private (401 unless the request carries HTTP Basic credentials `PRIVATE_USER`:`PRIVATE_PASSWORD`)."""

    server: LoopbackMirrors

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        behaviour, _, name = self.path.strip("/").partition("/")
        self.server.requests.append((behaviour, name))
        payload = self.server.files.get(name)
        if behaviour == "missing" or payload is None:
            self.send_error(404, "Not Found")
            return
        if (
            behaviour == "private"
            and self.headers.get("Authorization")
            != "Basic " + base64.b64encode(f"{PRIVATE_USER}:{PRIVATE_PASSWORD}".encode()).decode()
        ):
            self.send_error(401, "Unauthorized")
            return
        if behaviour == "stall":
            time.sleep(self.server.stall_seconds)
            return
        if behaviour == "flaky" and self.server.requests.count((behaviour, name)) == 1:
            self.send_error(503, "Service Unavailable")
            return
        if behaviour == "corrupt":
            payload = bytes([payload[0] ^ 0xFF]) + payload[1:]
        body = payload[: len(payload) // 2] if behaviour == "short" else payload
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (signature of the base class)
        pass


class LoopbackMirrors(http.server.ThreadingHTTPServer):
    daemon_threads = True  # a stalled handler must not hold up the test's teardown

    def __init__(self, files: dict[str, bytes], stall_seconds: float) -> None:
        super().__init__(("127.0.0.1", 0), _MirrorHandler)
        self.files = files
        self.stall_seconds = stall_seconds
        self.requests: list[tuple[str, str]] = []

    def mirror(self, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{behaviour}/"


@contextmanager
def loopback_mirrors(files: dict[str, bytes], stall_seconds: float = 3.0) -> Iterator[LoopbackMirrors]:
    """A real HTTP server on 127.0.0.1 (a free port) serving `files` under each behaviour's folder."""
    server = LoopbackMirrors(files, stall_seconds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
