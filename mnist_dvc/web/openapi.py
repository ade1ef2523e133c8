"""The API's OpenAPI 3.1 description (served at /api/openapi.json and shown by /api/docs)."""

from __future__ import annotations

from typing import Any

ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "a stable code: body_too_large, not_an_image, blank_image, ..."},
        "message": {"type": "string", "description": "what was expected and what was received"},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document() -> dict[str, Any]:
    from mnist_dvc.web.api import CONFIDENT_AT, IMAGE_TYPES, MAX_BODY_BYTES

    image_body = {kind: {"schema": {"type": "string", "format": "binary"}} for kind in IMAGE_TYPES}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MNIST digit recognizer",
            "version": "1",
            "description": (
                "The export stage's LiteRT model over HTTP. Images are normalised the way MNIST was made "
                "(ink fitted into 20x20, stroke width brought to MNIST's, centred by mass in 28x28), by the "
                "same code as `mnist-predict-images` and the predict stage."
            ),
        },
        "paths": {
            "/api/predict": {
                "post": {
                    "summary": "Read the digit in an image",
                    "description": (
                        f"A raw image body ({', '.join(IMAGE_TYPES)}) or a multipart/form-data form with a file "
                        f"field named `file`. At most {MAX_BODY_BYTES:,} bytes (larger: 413, refused before the "
                        f"body is read). `confident` is false when the top probability is under {CONFIDENT_AT}."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {
                            **image_body,
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"file": {"type": "string", "format": "binary"}},
                                    "required": ["file"],
                                }
                            },
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The reading",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Reading"}}},
                        },
                        "400": _error("An empty body, a bad Content-Length, or a form without a file field"),
                        "411": _error("No Content-Length (chunked bodies are refused)"),
                        "413": _error(f"A body over {MAX_BODY_BYTES:,} bytes"),
                        "415": _error("A Content-Type that is not an image or a multipart form"),
                        "422": _error(
                            "Not an image, a damaged or truncated one, one over the pixel limit (a decompression "
                            "bomb), or a blank one (no digit)"
                        ),
                        "503": _error("No model yet (run `make repro`)"),
                    },
                }
            },
            "/api/health": {
                "get": {
                    "summary": "The model being served",
                    "responses": {
                        "200": {
                            "description": "A model is loaded",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
                        },
                        "503": {
                            "description": "No model yet",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
                        },
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Error": ERROR,
                "Reading": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "integer", "minimum": 0, "maximum": 9},
                        "confident": {"type": "boolean"},
                        "message": {"type": "string"},
                        "probabilities": {"type": "array", "items": {"type": "number"}, "minItems": 10, "maxItems": 10},
                        "top": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"label": {"type": "integer"}, "probability": {"type": "number"}},
                            },
                        },
                        "image": {
                            "description": "the normalised 28x28 image the model saw, rows of grey levels 0-255",
                            "type": "array",
                            "items": {"type": "array", "items": {"type": "integer"}},
                        },
                        "model_md5": {"type": "string"},
                    },
                },
                "Health": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "no_model"]},
                        "model_file": {"type": "string"},
                        "md5": {"type": ["string", "null"]},
                        "dvc_lock_md5": {"type": ["string", "null"]},
                        "matches_dvc_lock": {"type": "boolean"},
                        "test_accuracy": {"type": ["number", "null"]},
                    },
                },
            }
        },
    }
