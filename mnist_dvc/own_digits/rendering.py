"""Test digits redrawn as people's own images: bigger canvases, other stroke widths, colours, positions, formats.

Used by `tests/test_own_images.py` and by `bench/own_images.py`, which measures the accuracy of
the committed model on them. Each style is deterministic given the digit and the seed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from mnist_dvc.own_digits.reading import sliding_extreme, stroke_width
from mnist_dvc.pen_strokes import centre_lines


@dataclasses.dataclass(frozen=True)
class Style:
    name: str
    canvas: tuple[int, int]  # width, height
    digit_side: int  # the 28x28 digit is drawn this big
    ink: tuple[int, int, int]
    paper: tuple[int, int, int] | None  # None: transparent
    stroke: str  # "as is", "thin", "thick" or "hollow" (each stroke drawn as its outline, as outline fonts are)
    suffix: str
    noise: float = 0.0  # standard deviation of added grey noise (a photo's grain)
    shade: float = 0.0  # how much darker the far corner is than the lit one (uneven light on a photo), 0-1


STYLES = (
    Style("black-on-white-png", (100, 100), 70, (0, 0, 0), (255, 255, 255), "as is", ".png"),
    Style("blue-on-cream-photo-jpeg", (300, 200), 150, (20, 30, 120), (235, 225, 190), "as is", ".jpg", noise=6.0),
    Style("white-on-black-bmp", (56, 56), 40, (255, 255, 255), (0, 0, 0), "as is", ".bmp"),
    Style("red-on-white-gif", (128, 160), 90, (200, 0, 0), (255, 255, 255), "as is", ".gif"),
    Style("black-on-transparent-png", (200, 200), 120, (0, 0, 0), None, "as is", ".png"),
    Style("fine-pen-on-big-canvas-png", (400, 400), 300, (0, 0, 0), (255, 255, 255), "thin", ".png"),
    Style("thick-marker-png", (120, 120), 90, (0, 0, 0), (255, 255, 255), "thick", ".png"),
    Style("hollow-outline-png", (200, 200), 150, (0, 0, 0), (255, 255, 255), "hollow", ".png"),
    Style("light-grey-on-dark-grey-jpeg", (90, 120), 60, (200, 200, 200), (70, 70, 70), "as is", ".jpg", noise=4.0),
    Style(
        "pencil-photo-in-uneven-light-jpeg",
        (320, 240),
        130,
        (70, 70, 80),
        (235, 230, 220),
        "as is",
        ".jpg",
        noise=5.0,
        shade=0.45,
    ),
)


def render(digit: np.ndarray, style: Style, seed: int) -> Image.Image:
    """Draw an MNIST digit (uint8 (28, 28), white on black) in `style`, at a seeded position on the canvas."""
    rng = np.random.default_rng(seed)
    side = style.digit_side
    ink_image = Image.fromarray(digit.reshape(28, 28)).resize((side, side), Image.Resampling.BICUBIC)
    scale = side / 28
    if style.stroke == "thin":  # a fine pen: strokes of about 1/20 of the digit's height (MNIST's: about 1/8)
        pen = Image.fromarray(np.where(fine_pen_path(np.asarray(ink_image) > 128), 255, 0).astype(np.uint8))
        ink_image = pen.filter(ImageFilter.MaxFilter(_odd(scale * 1.4))).filter(ImageFilter.GaussianBlur(1.0))
    elif style.stroke == "thick":
        ink_image = ink_image.filter(ImageFilter.MaxFilter(_odd(scale * 1.5)))
    elif style.stroke == "hollow":
        ink_image = outlined(digit.reshape(28, 28), side)
    width, height = style.canvas
    drawn_width, drawn_height = ink_image.size
    left = int(rng.integers(0, width - drawn_width + 1))
    top = int(rng.integers(0, height - drawn_height + 1))
    ink = np.zeros((height, width), dtype=np.float32)
    ink[top : top + drawn_height, left : left + drawn_width] = np.asarray(ink_image, dtype=np.float32) / 255.0
    colour = np.array(style.ink, dtype=np.float32)
    if style.paper is None:
        rgba = np.zeros((height, width, 4), dtype=np.float32)
        rgba[..., :3] = colour
        rgba[..., 3] = ink * 255.0
        return Image.fromarray(np.round(rgba).astype(np.uint8), mode="RGBA")
    paper = np.array(style.paper, dtype=np.float32)
    rgb = paper * (1.0 - ink[..., None]) + colour * ink[..., None]
    if style.shade:  # light falling off from one corner to the opposite one, as on a phone photo
        rows, columns = np.mgrid[0:height, 0:width]
        falloff = (rows / height + columns / width) / 2.0
        rgb = rgb * (1.0 - style.shade * falloff)[..., None]
    if style.noise:
        rgb = rgb + rng.normal(0.0, style.noise, size=(height, width, 1))
    image = Image.fromarray(np.clip(np.round(rgb), 0, 255).astype(np.uint8), mode="RGB")
    return image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64) if style.suffix == ".gif" else image


def outlined(digit: np.ndarray, side: int) -> Image.Image:
    """An MNIST digit drawn `side` pixels high as the outline of its strokes, as an outline font or a person
    tracing around each stroke draws it: a line of about 1/50 of the height just outside the stroke, its inside
    the stroke itself (widening the stroke first would close a bold digit's small loops into a blob, whose
    outline is a bare ring). Drawn on a margin, so the outline also closes around a stroke that runs to the
    edge of the 28x28 frame (the image is that margin larger on each side)."""
    margin = 2  # MNIST pixels
    framed = np.pad(digit, margin)
    drawn_side = round(framed.shape[0] * side / 28)
    solid = Image.fromarray(framed).resize((drawn_side, drawn_side), Image.Resampling.BICUBIC)
    solid = solid.point(lambda level: 255 if level > 128 else 0)
    around = solid.filter(ImageFilter.MaxFilter(3))
    edge = np.asarray(around, dtype=np.int16) - np.asarray(solid, dtype=np.int16)
    return Image.fromarray(edge.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8))


def fine_pen_path(mask: np.ndarray) -> np.ndarray:
    """Where a fine pen goes to draw the digit of a thick pen's binary `mask`: along the centre line of its
    strokes (thinning the strokes by erosion instead breaks their thin parts apart, which no pen does), and
    around the edge of its blobs, the places much wider than a stroke (a loop the thick pen filled in, strokes
    drawn over each other): a fine pen draws that loop, where a centre line would be one bare line."""
    blob_side = _odd(stroke_width(mask) * 1.4)
    blobs = sliding_extreme(sliding_extreme(mask, blob_side, np.min), blob_side, np.max)
    inside_blobs = sliding_extreme(blobs, 3, np.min)
    blob_edges = blobs & ~inside_blobs
    path: np.ndarray = (centre_lines(mask[np.newaxis])[0] & ~inside_blobs) | blob_edges
    return path


def render_typed(font: Path, digit: int, size: int, hollow: bool, seed: int) -> Image.Image:
    """The digit typed in `font` (a TrueType or OpenType file) `size` pixels high, black on white, at a seeded
    place, slightly turned; `hollow` draws only the glyph's outline, as an outline font does."""
    rng = np.random.default_rng(seed)
    typeface = ImageFont.truetype(str(font), size)
    canvas = Image.new("L", (size * 2, size * 2), 255)
    place = (int(rng.integers(size // 4, size // 2)), int(rng.integers(size // 8, size // 3)))
    if hollow:  # the glyph filled with paper over a stroke of ink around its edge
        ImageDraw.Draw(canvas).text(
            place, str(digit), font=typeface, fill=255, stroke_width=max(1, size // 40), stroke_fill=0
        )
    else:
        ImageDraw.Draw(canvas).text(place, str(digit), font=typeface, fill=0)
    return canvas.rotate(float(rng.uniform(-4.0, 4.0)), resample=Image.Resampling.BILINEAR, fillcolor=255)


def save_rendered(digit: np.ndarray, style: Style, seed: int, path: Path) -> Path:
    """Render and save in the style's format (JPEG at quality 85, as phones do); returns the path written."""
    image = render(digit, style, seed)
    target = path.with_suffix(style.suffix)
    image.save(target, quality=85) if style.suffix == ".jpg" else image.save(target)
    return target


def _odd(size: float) -> int:
    return int(max(3, 2 * round(size / 2) + 1))
