"""Accuracy of the committed model on digits that are not 28x28 MNIST arrays: the images people bring.

Two sets: the example drawings in data/own_digits (their file names, `digit<N>_...`, give the truth),
and the first N official test digits redrawn in each style of `mnist_dvc/own_digits/rendering.py` (canvas sizes,
stroke widths, colours, positions and file formats), read back through the same code as
`python -m mnist_dvc.own_digits.command`. Prints a table and writes it to bench/own_images.md.

    .venv/bin/python -m bench.own_images [--per-style 1000] [--model models/model.keras]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from mnist_dvc.formats.prepared_arrays import read_prepared
from mnist_dvc.model.files import load_model
from mnist_dvc.own_digits.predictions import predict_image_files
from mnist_dvc.own_digits.rendering import STYLES, save_rendered

ROOT = Path(__file__).resolve().parents[1]


def accuracy_on(model: object, paths: list[Path], labels: np.ndarray) -> tuple[float, int]:
    predictions = predict_image_files(lambda pixels: model.predict(pixels, batch_size=512, verbose=0), paths)  # type: ignore[attr-defined]
    failed = sum(prediction.error is not None for prediction in predictions)
    guessed = np.array([p.top_labels[0] if p.error is None else -1 for p in predictions])
    return float(np.mean(guessed == labels)), failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-style", type=int, default=1000)
    parser.add_argument("--model", type=Path, default=ROOT / "models/model.keras")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/own_images.md")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    test = read_prepared(ROOT / "data/prepared", "test")
    digits, labels = test.images[: args.per_style, ..., 0], test.labels[: args.per_style]
    rows = []
    original = float(np.mean(model.predict(digits[..., None], batch_size=1024, verbose=0).argmax(axis=1) == labels))
    rows.append(("the same test digits as 28x28 arrays (reference)", len(labels), original, 0, 0.0))
    own = sorted(path for path in (ROOT / "data/own_digits").iterdir() if re.match(r"digit\d_", path.name))
    own_labels = np.array([int(path.name[5]) for path in own])
    started = time.perf_counter()
    accuracy, failed = accuracy_on(model, own, own_labels)
    rows.append(("data/own_digits (example pen drawings)", len(own), accuracy, failed, time.perf_counter() - started))
    with tempfile.TemporaryDirectory() as scratch:
        for style in STYLES:
            started = time.perf_counter()
            paths = [
                save_rendered(digit, style, seed, Path(scratch) / f"{style.name}-{seed}")
                for seed, digit in enumerate(digits)
            ]
            accuracy, failed = accuracy_on(model, paths, labels)
            rows.append(
                (f"test digits redrawn: {style.name}", len(paths), accuracy, failed, time.perf_counter() - started)
            )
            print(f"{style.name}: {accuracy:.2%}", flush=True)
    table = ["| images | count | accuracy | unreadable | seconds (render + read + predict) |", "|---|---|---|---|---|"]
    table += [
        f"| {name} | {count} | {accuracy:.2%} | {failed} | {seconds:.1f} |"
        for name, count, accuracy, failed, seconds in rows
    ]
    text = f"Measured by `python -m bench.own_images --per-style {args.per_style}` with {args.model.name}.\n\n"
    text += "\n".join(table) + "\n"
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
