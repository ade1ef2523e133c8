"""Draw the example "own digits" in data/own_digits: three of each digit, by a simulated pen.

Not MNIST: each digit is a few pen strokes (lines and arcs), drawn with a random slant, size, stroke
width, position, ink and paper colour, saved as PNG, JPEG, BMP or GIF, so that the predict stage has
something realistic to read on a fresh clone. Replace them with photos or drawings of your own.

    python -m mnist_dvc.own_digits.example_drawings data/own_digits
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

Stroke = list[tuple[float, float]]


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, steps: int = 24) -> Stroke:
    """Points on an ellipse from angle `start` to `end` (degrees, 0 = right, 90 = down)."""
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in np.linspace(start, end, steps)
    ]


# Each digit: strokes in a unit box (x right, y down), as a person might write it.
DIGIT_STROKES: dict[int, list[Stroke]] = {
    0: [arc(0.5, 0.5, 0.28, 0.4, -90, 275)],
    1: [[(0.35, 0.25), (0.55, 0.1), (0.55, 0.9)]],
    2: [arc(0.5, 0.32, 0.27, 0.22, 190, 360) + [(0.7, 0.5), (0.22, 0.9), (0.8, 0.9)]],
    3: [arc(0.48, 0.3, 0.25, 0.2, 200, 450) + arc(0.48, 0.7, 0.3, 0.2, -90, 160)],
    4: [[(0.62, 0.9), (0.62, 0.1), (0.18, 0.65), (0.82, 0.65)]],
    5: [[(0.78, 0.1), (0.32, 0.1), (0.27, 0.45)] + arc(0.48, 0.65, 0.3, 0.25, -130, 150)],
    6: [[(0.7, 0.12), (0.45, 0.3), (0.27, 0.6)] + arc(0.5, 0.68, 0.23, 0.22, 180, 540)],
    7: [[(0.2, 0.12), (0.8, 0.12), (0.42, 0.9)]],
    8: [arc(0.5, 0.29, 0.22, 0.19, 90, 450), arc(0.5, 0.7, 0.27, 0.21, -90, 270)],
    9: [arc(0.5, 0.32, 0.24, 0.22, 0, 360), [(0.74, 0.32), (0.7, 0.9)]],
}
FORMATS = (".png", ".jpg", ".bmp", ".gif")
PALETTES = (
    ((20, 20, 20), (250, 250, 245)),
    ((25, 40, 140), (240, 235, 210)),
    ((240, 240, 240), (30, 30, 30)),
    ((150, 20, 20), (255, 255, 255)),
    ((60, 60, 60), (200, 205, 210)),
)


def draw_digit(digit: int, rng: np.random.Generator) -> Image.Image:
    """One digit on a canvas of random size, slant, pen width, colours and position."""
    width, height = int(rng.integers(100, 300)), int(rng.integers(100, 300))
    side = float(rng.uniform(0.45, 0.8)) * min(width, height)
    slant = float(rng.uniform(-0.25, 0.25))
    left = float(rng.uniform(0.1 * width, width - side * 0.8 - 0.1 * width))
    top = float(rng.uniform(0.05 * height, height - side - 0.05 * height))
    pen = max(2, int(side * float(rng.uniform(0.04, 0.12))))
    ink, paper = PALETTES[int(rng.integers(len(PALETTES)))]
    image = Image.new("RGB", (width, height), paper)
    draw = ImageDraw.Draw(image)
    for stroke in DIGIT_STROKES[digit]:
        points = []
        for x, y in stroke:
            x, y = x + rng.normal(0, 0.012), y + rng.normal(0, 0.012)
            points.append((left + (x + slant * (0.5 - y)) * side * 0.8, top + y * side))
        draw.line(points, fill=ink, width=pen, joint="curve")
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=ink)
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--per-digit", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for digit in range(10):
        for copy in range(args.per_digit):
            suffix = FORMATS[(digit + copy) % len(FORMATS)]
            image = draw_digit(digit, rng)
            path = args.out_dir / f"digit{digit}_{copy + 1}{suffix}"
            if suffix == ".gif":
                image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
            image.save(path, quality=90) if suffix == ".jpg" else image.save(path)
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
