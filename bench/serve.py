"""`make bench-serve`: the server of `make serve` measured from outside, as clients see it (after `make repro`).

Starts `python -m mnist_dvc.web.server` on 127.0.0.1 (a free port) with the repository's models/model.tflite
and prints, and writes to bench/serve.md:
- the time from starting the process to its first answer (`GET /api/health`), and that TensorFlow is absent;
- POST /api/predict with a drawn digit (a 280x280 canvas PNG, as the page sends) from 1, 4 and 16 clients
  at once for a few seconds each: answers per second and latency percentiles;
- the model alone, batch 1 (LiteRT, one thread): images per second;
- how the "not sure" bar splits the validation images' answers (where CONFIDENT_AT was chosen);
- hostile input from 8 clients at once (decompression bombs, 12-megapixel blank photos, truncated files,
  bodies over the limit): the status codes, and the server's memory before, at its peak and after.

    .venv/bin/python -m bench.serve [--seconds 5] [--model models/model.tflite]
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mnist_dvc.model.serving import LiteRTPredictor
from mnist_dvc.web.api import CONFIDENT_AT, MAX_BODY_BYTES

ROOT = Path(__file__).resolve().parents[1]


def canvas_png() -> bytes:
    """A 7 drawn on a 280x280 white canvas with an 18-pixel round pen, as the page sends it."""
    image = Image.new("L", (280, 280), 255)
    draw = ImageDraw.Draw(image)
    draw.line([(70, 60), (210, 60), (120, 230)], fill=0, width=18, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_bomb(side: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    idat = chunk(b"IDAT", zlib.compress(b"\0" * (side + 1) * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b"")


def post(url: str, data: bytes, content_type: str = "image/png") -> int:
    call = urllib.request.Request(url, data=data, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(call, timeout=60) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        return int(error.code)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load(url: str, clients: int, seconds: float, body: bytes) -> tuple[float, list[float], Counter[int]]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    stop = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            status = post(url, body)
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.perf_counter() - began), latencies, statuses


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def confidence_table(model_file: Path) -> list[str]:
    """How the "not sure" bar (CONFIDENT_AT) splits the validation images' answers: share under each bar, and
    the errors under and over it. Not for a model that trained on the validation images too
    (`train.include_validation`): its answers there say nothing of how sure it is of new images."""
    train = json.loads((ROOT / "metrics/train.json").read_text())
    if "val_accuracy" not in train:  # as tools/repro and tools/results_table read it: no held-out validation
        return [
            f'The "not sure" bar ({CONFIDENT_AT}) is not measured here: this model trained on the validation '
            f"images too ({train['training_images']:,} images, `train.include_validation`). It was chosen on the "
            "validation images of a model that had not seen them (docs/serving.md)."
        ]
    images = np.load(ROOT / "data/prepared/val_images.npy")
    labels = np.load(ROOT / "data/prepared/val_labels.npy")
    probabilities = LiteRTPredictor(model_file.read_bytes()).predict(images, batch_size=1000)
    top, right = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    lines = [
        f'The "not sure" bar on the {len(labels):,} validation images ({int((~right).sum())} errors); '
        f"the server uses {CONFIDENT_AT}:",
        "",
        "| bar | answers under it | errors under it | errors at or over it |",
        "|---|---|---|---|",
    ]
    for bar in (0.5, 0.6, 0.7, 0.8, 0.85):
        under = top < bar
        lines.append(
            f"| {bar} | {int(under.sum())} ({under.mean():.1%}) | {int((~right[under]).sum())} | "
            f"{int((~right[~under]).sum())} of {int((~under).sum()):,} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/serve.md")
    args = parser.parse_args(argv)
    model_file = ROOT / "models/model.tflite"
    if not model_file.is_file():
        print(f"bench.serve: expected {model_file} (run `make repro`). Received: no file", file=sys.stderr)
        return 2
    lines = [f"Measured by `python -m bench.serve --seconds {args.seconds:g}` ({model_file.name}, this machine).", ""]

    started = time.perf_counter()
    command = [sys.executable, "-m", "mnist_dvc.web.server", "--port", "0", "--quiet", "--repo", str(ROOT)]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        base = "http://" + server.stdout.readline().split("http://", 1)[1].split("/", 1)[0]
        with urllib.request.urlopen(f"{base}/api/health", timeout=30) as response:
            response.read()
        first_answer = time.perf_counter() - started
        modules = Path(f"/proc/{server.pid}/maps").read_text()
        tensorflow = "libtensorflow" in modules or "_pywrap_tensorflow" in modules
        lines += [
            "| measure | value |",
            "|---|---|",
            f"| start to first answer (process start, imports, model load, GET /api/health) | {first_answer:.2f} s |",
            f"| TensorFlow loaded in the server process | {'yes' if tensorflow else 'no'} |",
        ]
        body = canvas_png()
        url = f"{base}/api/predict"
        for _ in range(20):
            post(url, body)  # warm-up
        for clients in (1, 4, 16):
            rate, latencies, answered = load(url, clients, args.seconds, body)
            lines.append(
                f"| POST /api/predict, a drawn 280x280 PNG, {clients} client(s) | {rate:,.0f} answers/s, latency "
                f"p50 {1000 * statistics.median(latencies):.1f} ms, p99 {1000 * percentile(latencies, 0.99):.1f} ms "
                f"(statuses {dict(answered)}) |"
            )
        predictor = LiteRTPredictor(model_file.read_bytes())
        digit = np.zeros((1, 28, 28, 1), np.float32)
        digit[0, 6:22, 12:16, 0] = 255.0
        for _ in range(200):
            predictor.predict(digit)
        count, began = 0, time.perf_counter()
        while time.perf_counter() - began < args.seconds:
            predictor.predict(digit)
            count += 1
        lines.append(
            f"| the model alone, batch 1 (LiteRT, 1 thread) | {count / (time.perf_counter() - began):,.0f} images/s |"
        )

        before = rss_mb(server.pid)
        peak = before
        blank_photo = io.BytesIO()
        Image.new("L", (4000, 3000), 245).save(blank_photo, format="PNG")
        payloads = [png_bomb(50_000), blank_photo.getvalue(), body[: len(body) // 3], b"<html>not an image</html>"]
        statuses: Counter[int] = Counter()
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_mb(server.pid))
                time.sleep(0.02)

        def hostile(offset: int) -> None:
            for turn in range(12):
                statuses[post(url, payloads[(offset + turn) % len(payloads)])] += 1

        watcher = threading.Thread(target=watch)
        watcher.start()
        hostile_started = time.perf_counter()
        attackers = [threading.Thread(target=hostile, args=(offset,)) for offset in range(8)]
        for thread in attackers:
            thread.start()
        for thread in attackers:
            thread.join()
        hostile_seconds = time.perf_counter() - hostile_started
        host, port = base.removeprefix("http://").split(":")
        refused_at = time.perf_counter()
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(
                f"POST /api/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\n"
                f"Content-Length: {100 * MAX_BODY_BYTES}\r\n\r\n".encode()
            )
            too_large = connection.recv(100).decode().split("\r\n", 1)[0]
        refused_ms = 1000 * (time.perf_counter() - refused_at)
        done.set()
        watcher.join()
        after = rss_mb(server.pid)
        lines += [
            f"| 96 hostile requests from 8 clients (bombs, 12 MP blank photos, truncated PNGs, HTML) | "
            f"{hostile_seconds:.1f} s, statuses {dict(sorted(statuses.items()))} |",
            f"| server memory (RSS) before, at peak, after | {before:.0f} MB, {peak:.0f} MB, {after:.0f} MB |",
            f"| a declared {100 * MAX_BODY_BYTES / 1e6:.0f} MB body (headers only) | `{too_large}` in "
            f"{refused_ms:.1f} ms |",
        ]
        with urllib.request.urlopen(f"{base}/api/health", timeout=30) as response:
            lines.append(f"| health after all of it | {response.status} |")
    finally:
        server.terminate()
        server.wait(timeout=10)
    lines += ["", *confidence_table(model_file)]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
