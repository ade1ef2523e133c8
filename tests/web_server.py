"""The server of `make serve` started for a test: its own process on 127.0.0.1, a free port, a repository folder."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Served:
    url: str  # http://127.0.0.1:PORT
    pid: int


@contextlib.contextmanager
def running_server(repo: Path, log: Path) -> Iterator[Served]:
    """`python -m mnist_dvc.web.server --port 0 --repo repo`, on 127.0.0.1; yields its base URL and process id."""
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "mnist_dvc.web.server", "--host", "127.0.0.1", "--port", "0", "--repo", str(repo)],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            assert process.stdout is not None
            first_line = process.stdout.readline()
            assert "http://127.0.0.1:" in first_line, (first_line, log.read_text())
            yield Served("http://" + first_line.split("http://", 1)[1].split("/", 1)[0], process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None, method: str | None = None):
    """(status, parsed JSON or raw bytes, headers) of one HTTP request; 4xx and 5xx are answers, not errors."""
    call = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(call, timeout=30) as response:
            status, body, answered = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, body, answered = error.code, error.read(), error.headers
    parsed: Any = body
    if answered.get("Content-Type", "").startswith("application/json"):
        parsed = json.loads(body)
    return status, parsed, answered


def wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.05)
