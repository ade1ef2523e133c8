"""Validation trials for issue 25's handwriting styles: trained models scored on validation digits redrawn in
each style of `mnist_dvc/own_digits/rendering.py`, paired with the same digits as 28x28 arrays.

`bench/own_images.py` measures the served model on the test digits, once per final recipe; a change meant
to help a style (to the normaliser, the augmentation or the model) is chosen here, on validation digits, with
models trained without them (`python -m bench.accuracy_trials --save-models ...`, which keeps
`bench/work/trial_models/NAME-seedN.keras`).

Redrawing is most of the cost (the fine pen on a 400-pixel canvas: about 0.07 s a digit), so each style's
normalised digits are kept in bench/work/styled_validation/, under a name with the digest of the rendering
and reading code: a change to either redraws them.

    .venv/bin/python -m bench.style_trials bench/work/trial_models/*.keras [--digits 2000] [--styles NAME ...]

It prints the table and writes it to bench/style_trials.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench.own_images import paired_change, rendered_and_normalised
from mnist_dvc.atomic_files import atomic_file, write_text_atomically
from mnist_dvc.formats.prepared_arrays import read_prepared
from mnist_dvc.own_digits.rendering import STYLES

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench/work/styled_validation"
# The code that decides what a redrawn digit looks like once normalised.
DRAWING_CODE = ("mnist_dvc/own_digits/rendering.py", "mnist_dvc/own_digits/reading.py")
UNREADABLE = -1


def drawing_code_digest(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for name in DRAWING_CODE:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:12]


def styled_digits(
    style_name: str, digits: np.ndarray, cache: Path, code_digest: str, workers: int
) -> tuple[np.ndarray, np.ndarray]:
    """`digits` (n, 28, 28) redrawn in `style_name` and normalised as `predict_images` reads files: uint8
    (n, 28, 28, 1) and a readable mask (False: no digit found, counted as wrong). Read from `cache` when there,
    kept under `code_digest` (`drawing_code_digest()`)."""
    path = cache / f"{style_name}-{len(digits)}-{code_digest}.npz"
    if path.exists():
        stored = np.load(path)
        return stored["images"], stored["readable"]
    style_index = [style.name for style in STYLES].index(style_name)
    with tempfile.TemporaryDirectory() as scratch, ProcessPoolExecutor(workers) as pool:
        jobs = [(digit, style_index, 10_000 + index, scratch) for index, digit in enumerate(digits)]
        normalised = list(pool.map(rendered_and_normalised, jobs, chunksize=16))
    readable = np.array([image is not None for image in normalised])
    blank = np.zeros(digits.shape[1:], dtype=np.uint8)
    images = np.stack([blank if image is None else np.asarray(image).reshape(blank.shape) for image in normalised])
    with atomic_file(path) as temporary:
        np.savez(temporary, images=images[..., np.newaxis], readable=readable)
    return images[..., np.newaxis], readable


def labels_predicted(model: Any, images: np.ndarray, readable: np.ndarray | None = None) -> np.ndarray:
    """The label `model` (Keras) gives each image; UNREADABLE where `readable` is False."""
    guessed = np.asarray(model.predict(images, batch_size=1024, verbose=0)).argmax(axis=1)
    return guessed if readable is None else np.where(readable, guessed, UNREADABLE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+", help="trained .keras models (trained without validation)")
    parser.add_argument("--digits", type=int, default=2000, help="the first N validation digits")
    parser.add_argument("--styles", nargs="+", choices=[style.name for style in STYLES], default=None)
    parser.add_argument("--prepared-dir", type=Path, default=ROOT / "data/prepared")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/style_trials.md", help="where the table is written")
    args = parser.parse_args(argv)
    if args.digits < 1:
        parser.error(f"--digits must be a positive integer, got {args.digits}")
    validation = read_prepared(args.prepared_dir, "val")
    digits, labels = validation.images[: args.digits], validation.labels[: args.digits]
    styles = args.styles or [style.name for style in STYLES]
    workers = len(os.sched_getaffinity(0))
    code_digest = drawing_code_digest()
    sets = {name: styled_digits(name, digits[..., 0], args.cache, code_digest, workers) for name in styles}
    lines = [
        f"The first {len(labels)} validation digits, redrawn in each style of mnist_dvc/own_digits/rendering.py and "
        "normalised as `predict_images` reads files; each cell: the change from the same digits as 28x28 arrays, "
        "points (digits lost, gained). Measured by `python -m bench.style_trials`.",
        "",
        "| model | as arrays | " + " | ".join(styles) + " |",
        "|---|---|" + "---|" * len(styles),
    ]
    print("\n".join(lines), flush=True)
    from mnist_dvc.model.files import load_model

    for model_path in args.models:
        model = load_model(model_path)
        right_as_arrays = labels_predicted(model, digits) == labels
        cells = [model_path.stem, f"{right_as_arrays.mean():.2%}"]
        for images, readable in sets.values():
            change, lost, gained = paired_change(right_as_arrays, labels_predicted(model, images, readable) == labels)
            cells.append(f"{change:+.2f} ({lost}, {gained})")
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    write_text_atomically(args.out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
