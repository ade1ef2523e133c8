"""`make serve`'s API, through a real server on 127.0.0.1 (tests/web_server.py) and its pure functions.

The model is tests/web_model.py's (about 97% on MNIST's test digits); the browser's view of the page is
tests/test_browser.py.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from mnist_dvc.model.serving import LiteRTPredictor
from mnist_dvc.own_digits.predictions import predict_image_files
from mnist_dvc.own_digits.rendering import STYLES, save_rendered
from mnist_dvc.web.api import MAX_BODY_BYTES, handle
from mnist_dvc.web.served_model import MODEL_PATH, ModelSlot
from tests.web_model import mnist_test_digits
from tests.web_server import PROJECT_ROOT, request, running_server, wait_until

DIGITS, LABELS = mnist_test_digits(12)


def served_repository(folder: Path, model: Path | None) -> Path:
    """A folder laid out as a checkout after `make repro`: the model, dvc.lock recording its md5, metrics."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    if model is not None:
        (folder / "models").mkdir(exist_ok=True)
        shutil.copyfile(model, folder / MODEL_PATH)
        md5 = hashlib.md5(model.read_bytes()).hexdigest()
        lock = {"stages": {"export": {"outs": [{"path": MODEL_PATH, "md5": md5}]}}}
        (folder / "dvc.lock").write_text(yaml.safe_dump(lock))
        (folder / "metrics").mkdir(exist_ok=True)
        (folder / "metrics/export.json").write_text(json.dumps({"litert": {"test_accuracy": 0.9679}}))
    return folder


def digit_file(tmp_path: Path, index: int, style: int = 0) -> Path:
    return save_rendered(DIGITS[index], STYLES[style], index, tmp_path / f"digit{index}-{style}")


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def repo(tmp_path: Path, web_model: Path) -> Path:
    return served_repository(tmp_path / "repo", web_model)


@pytest.fixture
def server(repo: Path, tmp_path: Path):
    with running_server(repo, tmp_path / "server.log") as served:
        yield served.url


def multipart(field: str, filename: str, data: bytes, content_type: str = "image/png") -> tuple[bytes, str]:
    boundary = "----mnist-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_a_raw_image_and_a_form_upload_get_the_same_reading(server: str, tmp_path: Path) -> None:
    for index in range(6):
        data = digit_file(tmp_path, index).read_bytes()
        status, raw, _ = request(f"{server}/api/predict", data, {"Content-Type": "image/png"})
        assert status == 200, raw
        body, content_type = multipart("file", "digit.png", data)
        status, form, _ = request(f"{server}/api/predict", body, {"Content-Type": content_type})
        assert status == 200 and form == raw
        assert raw["label"] == LABELS[index], raw["message"]
        assert len(raw["probabilities"]) == 10 and abs(sum(raw["probabilities"]) - 1.0) < 1e-4
        assert [guess["label"] for guess in raw["top"]][0] == raw["label"]
        image = np.array(raw["image"])
        assert image.shape == (28, 28) and image.min() >= 0 and image.max() == 255


def test_the_api_and_predict_images_give_the_same_label_and_probabilities(
    server: str, repo: Path, tmp_path: Path
) -> None:
    """One normalisation: the same files through the API, the library function the predict stage uses and
    the `mnist-predict-images` command give the same labels and probabilities."""
    files = [digit_file(tmp_path, index, style) for index, style in ((0, 1), (1, 5), (2, 6), (3, 4), (4, 8))]
    predictor = LiteRTPredictor((repo / MODEL_PATH).read_bytes())
    library = predict_image_files(predictor.predict, files)
    out = tmp_path / "cli"
    command = [sys.executable, "-m", "mnist_dvc.own_digits.command", *map(str, files)]
    subprocess.run(
        [*command, "--model", str(repo / MODEL_PATH), "--out-dir", str(out)],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    )
    rows = (out / "predictions.csv").read_text().splitlines()[1:]
    for path, expected, row in zip(files, library, rows, strict=True):
        status, answer, _ = request(f"{server}/api/predict", path.read_bytes(), {"Content-Type": "image/png"})
        assert status == 200, answer
        assert answer["label"] == expected.top_labels[0] == int(row.split(",")[1])
        assert [guess["probability"] for guess in answer["top"]] == pytest.approx(expected.top_probabilities, abs=1e-6)
        assert np.array_equal(np.array(answer["image"], dtype=np.uint8), expected.pixels)


def test_health_names_the_model_its_recorded_md5_and_test_accuracy(server: str, repo: Path) -> None:
    status, health, _ = request(f"{server}/api/health")
    assert status == 200 and health["status"] == "ok"
    recorded = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["export"]["outs"][0]["md5"]
    assert health["model_file"] == MODEL_PATH and health["md5"] == health["dvc_lock_md5"] == recorded
    assert health["matches_dvc_lock"] and health["test_accuracy"] == 0.9679


def test_bad_input_gets_a_4xx_json_error_that_names_it_and_the_server_keeps_serving(
    server: str, tmp_path: Path
) -> None:
    good = digit_file(tmp_path, 0).read_bytes()
    blank = png_bytes(np.full((200, 200), 255, np.uint8))
    bomb = _png_header_only(100_000, 100_000)
    cases = {
        "not_an_image": (b"just some text, not pixels", "image/png"),
        "damaged_image": (good[: len(good) // 2], "image/png"),
        "too_many_pixels": (bomb, "image/png"),
        "blank_image": (blank, "image/png"),
        "empty_body": (b"", "image/png"),
        "unsupported_media_type": (good, "text/plain"),
    }
    for code, (data, content_type) in cases.items():
        status, answer, _ = request(f"{server}/api/predict", data, {"Content-Type": content_type})
        assert 400 <= status < 500 and answer["error"] == code, (code, status, answer)
        assert "expected" in answer["message"].lower() and "Received" in answer["message"], answer
    body, content_type = multipart("notes", "", b"hello", "text/plain")
    body = body.replace(b'; filename=""', b"")
    status, answer, _ = request(f"{server}/api/predict", body, {"Content-Type": content_type})
    assert (status, answer["error"]) == (400, "no_file")
    status, answer, _ = request(f"{server}/api/predict", method="GET")
    assert (status, answer["error"]) == (405, "method_not_allowed")
    status, answer, _ = request(f"{server}/nowhere")
    assert (status, answer["error"]) == (404, "not_found")
    status, answer, _ = request(f"{server}/api/predict", good, {"Content-Type": "image/png"})
    assert status == 200 and answer["label"] == LABELS[0]


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring width x height, with one tiny IDAT: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def test_a_body_over_the_limit_is_refused_before_it_is_read(server: str) -> None:
    """Only the headers are sent: the 413 comes back while the declared body has not been sent at all."""
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            f"POST /api/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\n"
            f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
        )
        answer = _read_until_closed(connection)
    assert answer.startswith("HTTP/1.1 413"), answer
    assert '"error": "body_too_large"' in answer and f"{MAX_BODY_BYTES + 1:,}" in answer
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(f"POST /api/predict HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        assert _read_until_closed(connection).startswith("HTTP/1.1 411")


def _read_until_closed(connection: socket.socket) -> str:
    """Everything the server sends before it closes the connection (it does after a refusal)."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received.decode()


def test_many_hostile_requests_at_once_leave_memory_bounded(repo: Path, tmp_path: Path) -> None:
    """Bombs, large blank images and damaged files from 8 clients at once: every answer a 4xx, none a 500,
    and the server's memory afterwards within 300 MB of where it started."""
    with running_server(repo, tmp_path / "server.log") as served:
        _hostile_clients(served.url, served.pid)


def _hostile_clients(server: str, pid: int) -> None:
    before = _rss_mb(pid)
    large_blank = png_bytes(np.full((3000, 4000), 250, np.uint8))
    payloads = [_png_header_only(60_000, 60_000), large_blank, large_blank[:5000], b"\0" * 1000]
    statuses: list[int] = []

    def client(offset: int) -> None:
        for turn in range(6):
            data = payloads[(offset + turn) % len(payloads)]
            statuses.append(request(f"{server}/api/predict", data, {"Content-Type": "image/png"})[0])

    threads = [threading.Thread(target=client, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == 48 and all(400 <= status < 500 for status in statuses), sorted(set(statuses))
    assert _rss_mb(pid) - before < 300, (before, _rss_mb(pid))
    assert request(f"{server}/api/health")[0] == 200


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def test_a_new_model_is_served_without_a_restart_and_a_bad_one_never_replaces_it(
    server: str, repo: Path, small_pipeline: Path, tmp_path: Path
) -> None:
    data = digit_file(tmp_path, 0).read_bytes()
    first = request(f"{server}/api/predict", data, {"Content-Type": "image/png"})[1]["model_md5"]
    # As the export stage writes it: a complete file renamed into place.
    staged = repo / "models/.model.tflite.new"
    shutil.copyfile(small_pipeline / MODEL_PATH, staged)
    os.replace(staged, repo / MODEL_PATH)
    second = request(f"{server}/api/predict", data, {"Content-Type": "image/png"})[1]
    assert second["model_md5"] != first
    status, health, _ = request(f"{server}/api/health")
    assert health["md5"] == second["model_md5"] and not health["matches_dvc_lock"] and health["test_accuracy"] is None
    (repo / "models/.broken").write_bytes(b"not a flatbuffer")
    os.replace(repo / "models/.broken", repo / MODEL_PATH)
    third = request(f"{server}/api/predict", data, {"Content-Type": "image/png"})[1]
    assert third["model_md5"] == second["model_md5"]  # the previous model keeps answering


def test_before_any_model_the_page_loads_and_the_api_says_to_run_make_repro(tmp_path: Path, web_model: Path) -> None:
    empty = served_repository(tmp_path / "empty", None)
    with running_server(empty, tmp_path / "server.log") as served:
        url = served.url
        status, page, headers = request(f"{url}/")
        assert status == 200 and headers["Content-Type"].startswith("text/html") and b"<canvas" in page
        status, health, _ = request(f"{url}/api/health")
        assert status == 503 and health["status"] == "no_model" and "make repro" in health["message"]
        data = digit_file(tmp_path, 1).read_bytes()
        status, answer, _ = request(f"{url}/api/predict", data, {"Content-Type": "image/png"})
        assert (status, answer["error"]) == (503, "no_model") and "make repro" in answer["message"]
        served_repository(empty, web_model)  # `make repro` has run
        wait_until(lambda: request(f"{url}/api/health")[0] == 200)
        status, answer, _ = request(f"{url}/api/predict", data, {"Content-Type": "image/png"})
        assert status == 200 and answer["label"] == LABELS[1]


def test_the_page_and_the_api_docs_load_nothing_from_another_host(server: str) -> None:
    for path in ("/", "/api/docs"):
        status, page, _ = request(f"{server}{path}")
        assert status == 200
        text = page.decode()
        for reference in [part.split('"', 2)[1] for part in text.split(" src=")[1:] + text.split(" href=")[1:]]:
            assert reference.startswith("/"), (path, reference)
            assert request(f"{server}{reference}")[0] == 200, reference
    status, spec, _ = request(f"{server}/api/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.") and {"/api/predict", "/api/health"} <= set(spec["paths"])


def test_the_server_never_imports_tensorflow(repo: Path) -> None:
    """The model is LiteRT's: the server process answers without TensorFlow or Keras loaded (so it starts in
    well under 2 s; bench/serve.py measures it)."""
    script = (
        "import sys; from pathlib import Path\n"
        "from mnist_dvc.web.api import handle; from mnist_dvc.web.served_model import ModelSlot\n"
        "import mnist_dvc.web.server\n"
        f"slot = ModelSlot(Path({str(repo)!r}))\n"
        "answer = handle('GET', '/api/health', {}, b'', slot)\n"
        "assert answer.status == 200, answer\n"
        "print(sorted(name for name in ('tensorflow', 'keras') if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_static_name_cannot_reach_outside_the_page_folder(repo: Path) -> None:
    slot = ModelSlot(repo)
    for path in ("/static/../api.py", "/static/..%2fapi.py", "/static/.hidden.js", "/static/app.py", "/static/x/y.js"):
        assert handle("GET", path, {}, b"", slot).status == 404, path
    assert handle("GET", "/static/app.js", {}, b"", slot).status == 200


def test_no_pipeline_stage_depends_on_the_web_layer() -> None:
    """Changing the server or the page reruns nothing: no stage lists a file of mnist_dvc/web/."""
    stages = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        assert not [dep for dep in stage.get("deps", []) if dep.startswith("mnist_dvc/web")], name
