"""The HTTP API and page as pure functions: a request's method, path, headers and body in, a response out.

    POST /api/predict     an image (multipart/form-data file field, or a raw image/* body) -> label,
                          ten probabilities, top three, the normalised 28x28 image the model saw
    GET  /api/health      the model file, its md5, the md5 dvc.lock records for it, its test accuracy
    GET  /api/openapi.json, /api/docs   the API's OpenAPI description, and a page that shows it
    GET  /                the page to draw on (static/), which works before any model exists

Images go through exactly the code `mnist-predict-images` and the predict stage use (decode, normalise the
MNIST way, predict), so the same file gets the same label and probabilities everywhere. Every refusal is a
4xx JSON body {"error": <code>, "message": <what was expected, what came>}; input never gives a 500.
"""

from __future__ import annotations

import dataclasses
import json
from email.parser import BytesParser
from email.policy import HTTP
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mnist_dvc.digit_arrays import NUM_CLASSES
from mnist_dvc.own_digits.reading import ImageError, decode_grayscale, normalise_digit
from mnist_dvc.web.openapi import openapi_document
from mnist_dvc.web.served_model import ModelSlot, recorded_facts

MAX_BODY_BYTES = 10 * 1024 * 1024  # a phone photo is 2-6 MB; larger bodies are refused before they are read
# Below this top probability the answer is "not sure", with the top guesses. Chosen on the 5,999 validation
# images with the committed model (`make bench-serve` prints the table): 2.2% of answers fall under 0.70 and
# hold 23 of the 28 errors (wrong 18% of the time); the answers at or over it are wrong 5 times in 5,870.
# (Training with label smoothing keeps even clear digits near 0.9, so a higher bar flags many right answers.)
CONFIDENT_AT = 0.70
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp", "image/tiff")
RAW_TYPES = (*IMAGE_TYPES, "application/octet-stream")
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
NO_MODEL = "No model yet: run `make repro` (it trains the model and exports models/model.tflite), then reload."


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def json_response(status: int, document: dict[str, Any]) -> Response:
    return Response(status, "application/json", json.dumps(document, indent=None).encode())


def error_response(status: int, code: str, message: str) -> Response:
    return json_response(status, {"error": code, "message": message})


def declared_length_problem(method: str, headers: dict[str, str]) -> Response | None:
    """A refusal decided from the headers alone, before any byte of the body is read (413, 411, 400)."""
    if method != "POST":
        return None
    if "chunked" in headers.get("transfer-encoding", "").lower() or "content-length" not in headers:
        return error_response(
            411, "length_required", "Expected a Content-Length header. Received: none (a chunked or unsized body)"
        )
    try:
        length = int(headers["content-length"])
    except ValueError:
        return error_response(
            400, "bad_content_length", f"Expected a Content-Length in bytes. Received: {headers['content-length']!r}"
        )
    if length < 0:
        return error_response(400, "bad_content_length", f"Expected a Content-Length in bytes. Received: {length}")
    if length > MAX_BODY_BYTES:
        return error_response(
            413,
            "body_too_large",
            f"Expected at most {MAX_BODY_BYTES:,} bytes. Received: a Content-Length of {length:,} bytes",
        )
    return None


def media_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def uploaded_image(headers: dict[str, str], body: bytes) -> bytes | Response:
    """The image bytes of a request: a raw image/* body, or the file field of a multipart/form-data form."""
    kind = media_type(headers)
    if kind == "multipart/form-data":
        return _multipart_file(headers["content-type"], body)
    if kind not in RAW_TYPES:
        return error_response(
            415,
            "unsupported_media_type",
            "Expected an image (Content-Type image/png, image/jpeg, ...) or a multipart/form-data form with a "
            f"file field. Received: Content-Type {kind or 'none'!r}",
        )
    return body


def _multipart_file(content_type: str, body: bytes) -> bytes | Response:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", errors="replace") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return error_response(400, "bad_form", "Expected a multipart/form-data body with a boundary. Received: none")
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None or name in ("file", "image"):
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else b""
    return error_response(
        400, "no_file", "Expected a form field 'file' (or 'image') holding the image. Received: a form without one"
    )


@dataclasses.dataclass(frozen=True)
class Reading:
    """What the model made of one image."""

    pixels: np.ndarray  # uint8 (28, 28), what the model saw
    probabilities: np.ndarray  # float32 (10,)
    model_md5: str  # of the model file that answered

    @property
    def label(self) -> int:
        return int(np.argmax(self.probabilities))

    def document(self) -> dict[str, Any]:
        order = [int(label) for label in np.argsort(-self.probabilities, kind="stable")[:3]]
        top = [{"label": label, "probability": float(self.probabilities[label])} for label in order]
        confident = top[0]["probability"] >= CONFIDENT_AT
        guesses = " or ".join(f"{guess['label']} ({guess['probability']:.0%})" for guess in top[:2])
        return {
            "label": self.label,
            "confident": confident,
            "message": f"It is a {self.label}." if confident else f"Not sure: maybe {guesses}.",
            "probabilities": [float(value) for value in self.probabilities],
            "top": top,
            "image": self.pixels.tolist(),
            "model_md5": self.model_md5,
        }


def read_image(data: bytes, slot: ModelSlot, source: str = "the uploaded image") -> Reading | Response:
    if not data:
        return error_response(400, "empty_body", f"Expected {source}'s bytes. Received: an empty body")
    try:
        pixels = normalise_digit(decode_grayscale(data, source), source)
    except ImageError as error:
        return error_response(422, error.kind, str(error))
    model = slot.current()
    if model is None:
        return error_response(503, "no_model", NO_MODEL)
    probabilities = model.predict(pixels[np.newaxis, :, :, np.newaxis])[0]
    assert probabilities.shape == (NUM_CLASSES,)
    return Reading(pixels, probabilities, model.md5)


def predict(headers: dict[str, str], body: bytes, slot: ModelSlot) -> Response:
    data = uploaded_image(headers, body)
    if isinstance(data, Response):
        return data
    reading = read_image(data, slot)
    if isinstance(reading, Response):
        return reading
    return json_response(200, reading.document())


def health(slot: ModelSlot) -> Response:
    model = slot.current()
    facts = recorded_facts(slot.repository, model)
    if model is None:
        return json_response(503, {"status": "no_model", "message": slot.last_error or NO_MODEL, **facts})
    return json_response(200, {"status": "ok", **facts})


def static_file(name: str) -> Response | None:
    """A file of the page (mnist_dvc/web/static), by bare name only: no folders, so no path escapes."""
    if "/" in name or "\\" in name or name.startswith(".") or Path(name).suffix not in STATIC_TYPES:
        return None
    found = resources.files("mnist_dvc.web").joinpath("static", name)
    if not found.is_file():
        return None
    return Response(200, STATIC_TYPES[Path(name).suffix], found.read_bytes(), (("Cache-Control", "no-cache"),))


def handle(method: str, path: str, headers: dict[str, str], body: bytes, slot: ModelSlot) -> Response:
    """The response to one request (headers with lower-case names; `body` already read and within bounds)."""
    route = path.split("?", 1)[0]
    routes = {
        "/api/predict": ("POST",),
        "/api/health": ("GET", "HEAD"),
        "/api/openapi.json": ("GET", "HEAD"),
        "/api/docs": ("GET", "HEAD"),
        "/": ("GET", "HEAD"),
    }
    if route in routes and method not in routes[route]:
        allowed = routes[route]
        refusal = error_response(
            405, "method_not_allowed", f"Expected {' or '.join(allowed)} on {route}. Received: {method}"
        )
        return dataclasses.replace(refusal, headers=(("Allow", ", ".join(allowed)),))
    if route == "/api/predict":
        return predict(headers, body, slot)
    if route == "/api/health":
        return health(slot)
    if route == "/api/openapi.json":
        return json_response(200, openapi_document())
    page = {"/": "index.html", "/api/docs": "api-docs.html"}.get(route)
    if page is not None or route.startswith("/static/"):
        found = static_file(page or route.removeprefix("/static/"))
        if found is not None:
            return found
    return error_response(404, "not_found", f"Expected one of {', '.join(routes)} or a page file. Received: {route}")
