"""Accuracy of the committed model on digits that are not 28x28 MNIST arrays: the images people bring.

Three kinds of sets, each read through the same code as `python -m mnist_dvc.predict_images`:
  - the official test digits redrawn in each style of `mnist_dvc/own_digits/rendering.py` (canvas sizes, stroke
    widths, hollow strokes, colours, positions, file formats), paired with the same digits as 28x28 arrays:
    "change" is the drawn set's accuracy minus the arrays', over the same digits;
  - labelled image folders (the example drawings in data/own_digits, and any `--photos DIR`: each file's name
    starts with its digit, as `digit7_...`, `7_...` or `7-...`);
  - digits typed in fonts (`--fonts FILE ...`; by default DejaVu Sans, which matplotlib ships, and the
    handwriting fonts found among the system's), solid and hollow (each glyph's outline only), 3 sizes.
Prints a table and writes it to bench/own_images.md.

    .venv/bin/python -m bench.own_images [--per-style 10000] [--styles NAME ...] [--photos DIR ...] [--fonts FILE ...]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from mnist_dvc.atomic_files import write_text_atomically
from mnist_dvc.formats.prepared_arrays import read_prepared
from mnist_dvc.model.serving import LiteRTPredictor
from mnist_dvc.own_digits.reading import IMAGE_SUFFIXES, ImageError, normalise_digit, read_grayscale
from mnist_dvc.own_digits.rendering import STYLES, render_typed, save_rendered

ROOT = Path(__file__).resolve().parents[1]
LABELLED_NAME = re.compile(r"^(?:digit)?(\d)[_-]")
FONT_SIZES = (48, 96, 200)
# Handwriting fonts that Debian packages (fonts-comic-neue, fonts-humor-sans, fonts-dkg-handwriting, ...),
# measured when installed; `--fonts` measures any others.
HANDWRITING_FONT_NAMES = re.compile(
    r"ComicNeue-Regular|Humor-Sans|dkg\.ttf|Breip\.ttf|Kristi|femkeklaver|Rufscript|DancingScript-Regular|"
    r"KaushanScript|KleeOne-Regular|SteveHand|Delphine|BecauseWe"
)


def normalised(path: Path) -> np.ndarray | None:
    """The file read and normalised, or None when it holds no readable digit (counted as wrong)."""
    try:
        return normalise_digit(read_grayscale(path), str(path))
    except ImageError:
        return None


def rendered_and_normalised(job: tuple[np.ndarray, int, int, str]) -> np.ndarray | None:
    digit, style_index, seed, folder = job
    return normalised(save_rendered(digit, STYLES[style_index], seed, Path(folder) / f"{seed}"))


def typed_and_normalised(job: tuple[str, int, int, bool]) -> np.ndarray | None:
    font, digit, size, hollow = job
    grey = np.asarray(render_typed(Path(font), digit, size, hollow, seed=digit * 1000 + size), dtype=np.float32)
    try:
        return normalise_digit(grey, f"{Path(font).name} {digit}")
    except ImageError:
        return None


def paired_change(right_as_arrays: np.ndarray, right: np.ndarray) -> tuple[float, int, int]:
    """(accuracy change in points, digits lost, digits gained) of `right` against `right_as_arrays`: booleans
    per digit, the same digits in the same order."""
    if right.shape != right_as_arrays.shape:
        raise ValueError(
            f"expected two results per digit of the same shape. Received: {right.shape}, {right_as_arrays.shape}"
        )
    change = 100.0 * (float(right.mean()) - float(right_as_arrays.mean()))
    return change, int((right_as_arrays & ~right).sum()), int((~right_as_arrays & right).sum())


def labels_of(predictor: LiteRTPredictor, images: list[np.ndarray | None]) -> np.ndarray:
    """The predicted label of each image; -1 where it could not be read."""
    readable = [index for index, image in enumerate(images) if image is not None]
    guessed = np.full(len(images), -1)
    if readable:
        guessed[readable] = predictor.predict(np.stack([images[i] for i in readable])).argmax(axis=1)  # type: ignore[misc]
    return guessed


def labelled_files(folder: Path) -> tuple[list[Path], np.ndarray]:
    paths = sorted(
        path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES and LABELLED_NAME.match(path.name)
    )
    return paths, np.array([int(LABELLED_NAME.match(path.name).group(1)) for path in paths])  # type: ignore[union-attr]


def default_fonts() -> list[Path]:
    import matplotlib

    fonts = [Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"]
    system = Path("/usr/share/fonts")
    if system.is_dir():
        fonts += sorted(
            path
            for path in system.rglob("*")
            if path.suffix in (".ttf", ".otf") and HANDWRITING_FONT_NAMES.search(path.name)
        )
    return fonts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-style", type=int, default=10_000, help="how many test digits each style redraws")
    parser.add_argument(
        "--styles", nargs="*", choices=[style.name for style in STYLES], default=None, help="redraw only these styles"
    )
    parser.add_argument("--model", type=Path, default=ROOT / "models/model.tflite", help="the LiteRT model served")
    parser.add_argument("--photos", type=Path, nargs="*", default=[], help="folders of labelled images")
    parser.add_argument("--fonts", type=Path, nargs="*", help="font files (default: DejaVu Sans + handwriting fonts)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/own_images.md")
    args = parser.parse_args(argv)
    predictor = LiteRTPredictor(args.model.read_bytes(), source=str(args.model))
    test = read_prepared(ROOT / "data/prepared", "test")
    digits, labels = test.images[: args.per_style, ..., 0], test.labels[: args.per_style]
    right_as_arrays = predictor.predict(digits).argmax(axis=1) == labels
    rows = [("the test digits as 28x28 arrays (reference)", len(labels), f"{right_as_arrays.mean():.2%}", "", "", "")]
    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as pool, tempfile.TemporaryDirectory() as scratch:
        for style_index, style in enumerate(STYLES):
            if args.styles is not None and style.name not in args.styles:
                continue
            started = time.perf_counter()
            jobs = [(digit, style_index, seed, scratch) for seed, digit in enumerate(digits)]
            guessed = labels_of(predictor, list(pool.map(rendered_and_normalised, jobs, chunksize=64)))
            right = guessed == labels
            change, lost, gained = paired_change(right_as_arrays, right)
            rows.append(
                (
                    f"test digits redrawn: {style.name}",
                    len(labels),
                    f"{right.mean():.2%}",
                    f"{change:+.2f} (lost {lost}, gained {gained})",
                    str(int((guessed == -1).sum())),
                    f"{time.perf_counter() - started:.0f}",
                )
            )
            print(" | ".join(str(cell) for cell in rows[-1]), flush=True)
        for folder in [ROOT / "data/own_digits", *args.photos]:
            paths, truth = labelled_files(folder)
            guessed = labels_of(predictor, list(pool.map(normalised, paths)))
            name = "data/own_digits (example pen drawings)" if folder == ROOT / "data/own_digits" else str(folder)
            rows.append((name, len(paths), f"{np.mean(guessed == truth):.2%}", "", str(int((guessed == -1).sum())), ""))
        fonts = args.fonts if args.fonts is not None else default_fonts()
        for hollow in (False, True):
            for font in fonts:
                typed = [(str(font), digit, size, hollow) for size in FONT_SIZES for digit in range(10)]
                truth = np.array([digit for _, digit, _, _ in typed])
                guessed = labels_of(predictor, list(pool.map(typed_and_normalised, typed)))
                kind = "hollow (outline only)" if hollow else "solid"
                rows.append(
                    (
                        f"typed in {font.name}, {kind}",
                        len(typed),
                        f"{np.mean(guessed == truth):.2%}",
                        "",
                        str(int((guessed == -1).sum())),
                        "",
                    )
                )
    table = [
        "| images | count | accuracy | change from the same digits as arrays, points | unreadable | seconds |",
        "|---|---|---|---|---|---|",
    ]
    table += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    text = (
        f"Measured by `python -m bench.own_images --per-style {args.per_style}"
        + (f" --styles {' '.join(args.styles)}" if args.styles is not None else "")
        + f"` with {args.model.name} "
        f"(the served LiteRT model), {workers} worker processes.\n\n" + "\n".join(table) + "\n"
    )
    write_text_atomically(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
