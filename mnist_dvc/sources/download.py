"""Downloading files whose size and sha256 are known in advance, from an ordered list of mirrors.

Each mirror is tried in turn; a timeout, a dropped connection or a 5xx answer is retried a bounded
number of times (waiting 1 s, then 2 s, ...), anything else moves on to the next mirror at once. A file
is returned only when its size and sha256 match: bytes that fail the check are never used. When every
mirror fails, the error lists what each one answered.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.client
import logging
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import TextIO

from mnist_dvc.errors import PipelineError

logger = logging.getLogger("mnist_dvc.sources.download")

_CHUNK_BYTES = 64 * 1024
_RETRIED_HTTP_CODES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclasses.dataclass(frozen=True)
class ExpectedFile:
    """A file to download: its name under each mirror, its size in bytes and its sha256 (hex)."""

    name: str
    size: int
    sha256: str


class _Failed(Exception):
    """One attempt failed; `retry` says whether the same mirror is worth another try."""

    def __init__(self, answer: str, retry: bool) -> None:
        super().__init__(answer)
        self.answer = answer
        self.retry = retry


class Progress:
    """A one-line progress bar on a terminal; elsewhere (CI logs, DVC's captured output) a line per quarter."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(total, 1)
        self.stream = stream or sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.shown = -1

    def update(self, done: int) -> None:
        percent = min(100, done * 100 // self.total)
        step = percent if self.interactive else percent // 25 * 25
        if step == self.shown:
            return
        self.shown = step
        bar = "#" * (step // 5) + "." * (20 - step // 5)
        line = f"{self.label} [{bar}] {step:3d}% of {self.total / 1e6:.1f} MB"
        if self.interactive:
            self.stream.write("\r" + line + ("\n" if step == 100 else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def redact_credentials(text: str) -> str:
    """`text` with the `user:password@` of any URL in it replaced by `***@`: nothing printed shows a secret."""
    return _URL_CREDENTIALS.sub("***@", text)


def _request(url: str) -> urllib.request.Request:
    """A GET of `url`; credentials in the URL (`https://user:password@host/...`) go as HTTP Basic auth."""
    parts = urllib.parse.urlsplit(url)
    headers = {"User-Agent": "mnist-dvc-pipeline"}
    if parts.username is not None:
        user_password = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(user_password.encode()).decode()
        url = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return urllib.request.Request(url, headers=headers)


def mirror_url(mirror: str, name: str) -> str:
    """The URL of `name` under `mirror` (with or without a trailing slash)."""
    return urllib.parse.urljoin(mirror if mirror.endswith("/") else mirror + "/", name)


def download_verified(
    expected: ExpectedFile,
    mirrors: tuple[str, ...],
    timeout_seconds: float,
    retries: int,
    sleep: Callable[[float], None] = time.sleep,
    progress_stream: TextIO | None = None,
) -> bytes:
    """The bytes of `expected` from the first mirror that serves them intact."""
    answers: list[str] = []
    for mirror in mirrors:
        url = mirror_url(mirror, expected.name)
        shown = redact_credentials(url)
        for attempt in range(retries + 1):
            if attempt:
                sleep(float(2 ** (attempt - 1)))
            try:
                payload = _download_once(url, expected, timeout_seconds, progress_stream)
            except _Failed as failure:
                tries = f" (try {attempt + 1} of {retries + 1})" if retries and failure.retry else ""
                answers.append(f"{shown}: {failure.answer}{tries}")
                logger.warning("%s: %s", shown, failure.answer)
                if failure.retry:
                    continue
                break
            logger.info("downloaded %s (%d bytes, sha256 verified)", shown, len(payload))
            return payload
    listing = "\n".join(f"  - {answer}" for answer in answers) or "  - (no mirrors configured)"
    raise PipelineError(
        f"{expected.name}: expected {expected.size} bytes with sha256 {expected.sha256} from one of "
        f"{len(mirrors)} mirror(s). Received: no intact copy; the mirrors answered:\n{listing}"
    )


def _download_once(url: str, expected: ExpectedFile, timeout_seconds: float, progress_stream: TextIO | None) -> bytes:
    request = _request(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:  # noqa: S310 (http/https only, checked in params)
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) != expected.size:
                raise _Failed(f"size {int(length)} bytes announced, expected {expected.size}", retry=False)
            payload = _read_body(response, expected, progress_stream)
    except urllib.error.HTTPError as error:
        raise _Failed(f"HTTP {error.code} {error.reason}", retry=error.code in _RETRIED_HTTP_CODES) from None
    except urllib.error.URLError as error:
        raise _Failed(f"could not connect ({error.reason})", retry=True) from None
    except TimeoutError:
        raise _Failed(f"no answer within {timeout_seconds:g} s (timed out)", retry=True) from None
    except (ConnectionError, OSError, http.client.HTTPException) as error:
        raise _Failed(f"connection failed ({error})", retry=True) from None
    if len(payload) != expected.size:
        raise _Failed(f"received {len(payload)} bytes, expected {expected.size}", retry=True)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != expected.sha256:
        raise _Failed(f"sha256 {digest} does not match the published {expected.sha256}; file discarded", retry=False)
    return payload


def _read_body(response: object, expected: ExpectedFile, progress_stream: TextIO | None) -> bytes:
    """Read at most one byte more than expected (a larger file is wrong, no need to fetch it all)."""
    progress = Progress(f"downloading {expected.name}", expected.size, progress_stream)
    chunks: list[bytes] = []
    received = 0
    while received <= expected.size:
        chunk = response.read(min(_CHUNK_BYTES, expected.size + 1 - received))  # type: ignore[attr-defined]
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
        progress.update(min(received, expected.size))
    return b"".join(chunks)
