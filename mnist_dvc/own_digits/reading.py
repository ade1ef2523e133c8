"""Reading people's own digit images (photos, scans, drawings) and normalising them the way MNIST was made.

MNIST's digits are white ink on black, scaled so the longer side of the ink's bounding box is 20 pixels
(keeping the aspect ratio), and placed in a 28x28 frame with the ink's centre of mass at the centre.
`normalise_digit` does the same to any image: grayscale, a light background detected from the border
and inverted, paper texture suppressed, cropped to the ink, outlined (hollow) strokes filled in, the
stroke width brought to MNIST's (a hairline on a big canvas would otherwise vanish when shrunk; the box
is measured again around the widened stroke, as MNIST's was around the pen's), scaled, and centred by
mass at pixel (14, 14), where MNIST's centres of mass lie on average (not at 13.5, the frame's middle).
Decoding is Pillow's: PNG, JPEG, BMP, GIF, TIFF and WebP, any size, colour mode or EXIF orientation.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from mnist_dvc.digit_arrays import IMAGE_SIDE
from mnist_dvc.errors import PipelineError
from mnist_dvc.input_files import what_is_at

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
FRAME_SIDE = IMAGE_SIDE
BOX_SIDE = 20  # the longer side of the ink's bounding box in MNIST
WORKING_SIDE = 160  # the box is first brought to this size, where stroke width is measured and adjusted
MNIST_STROKE = 3.0  # typical MNIST stroke width, in pixels of the 20-pixel box (measured: 2.5-3 fit best)
PAPER_SIDE = 128  # the paper's shading is estimated on a copy this big
THIN_BELOW = 0.6  # strokes under this share of MNIST_STROKE are thickened to it
THICK_ABOVE = 3.0  # strokes over this multiple of MNIST_STROKE are thinned towards it (MNIST has bold digits too)
INK_FLOOR = 0.25  # ink fainter than this share of the strongest is paper texture, JPEG noise or shadow
# The inside of an outlined stroke: at most this share of the drawing's longer side wide (a disc-shaped hole's
# width here is half its diameter), edged by lines at most this share of that width, and at least this
# elongated (half its outline over its width: a disc's is pi, a band's its length over its width).
OUTLINED_MAX_WIDTH = 0.3
OUTLINED_MAX_LINE = 0.4
OUTLINED_MIN_ELONGATION = 3.6
# More elongated than any oval loop, or a triangular one (a closed 4's; an equilateral triangle's is 5.2): no further
# test.
OUTLINED_SURE_ELONGATION = 5.6
OUTLINED_MAX_WIDEST = 1.3  # less elongated: nowhere much wider than on average, a band, not an oval (a disc's is 2)
OUTLINED_NEAR_OUTSIDE = 2.0  # a stroke's inside comes within this many line widths of the drawing's outside
OUTLINE_LEVEL = 80  # holes are looked for where ink is over this grey level: a faint hairline still closes a loop
MIN_CONTRAST = 40  # grey levels between paper and ink below which an image counts as blank
MAX_PIXELS = 50_000_000  # larger images are refused rather than decoded (a decompression bomb guard)


class ImageError(PipelineError):
    """One image could not be read or holds no digit; the others are still predicted. `kind` says which of
    IMAGE_ERROR_KINDS it is (the HTTP API answers with it)."""

    def __init__(self, message: str, kind: str = "unreadable") -> None:
        super().__init__(message)
        self.kind = kind


IMAGE_ERROR_KINDS = ("unreadable", "not_an_image", "damaged_image", "too_many_pixels", "too_small", "blank_image")


@dataclasses.dataclass(frozen=True)
class LoadedImage:
    path: Path
    pixels: np.ndarray | None  # uint8 (28, 28), MNIST-style; None when `error` says why not
    error: str | None = None


def image_paths(inputs: list[Path]) -> list[Path]:
    """Files named directly, and the image files (by suffix, sorted by name) of folders named; each once."""
    found: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found += sorted(
                child for child in path.iterdir() if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            found.append(path)  # a missing or unreadable file is reported per file by `load_image`
    return list(dict.fromkeys(found))


def read_grayscale(path: Path) -> np.ndarray:
    """The image at `path` as float32 grey levels 0-255 (first frame; EXIF rotation applied; alpha flattened)."""
    found = what_is_at(path)
    if found != "a file":
        raise ImageError(f"{path}: expected an image file. Received: {found}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageError(f"{path}: expected a readable image file. Received: {error.strerror or error}") from None
    return decode_grayscale(data, str(path))


def decode_grayscale(data: bytes, source: str) -> np.ndarray:
    """An encoded image (the bytes of a file or of an upload) as float32 grey levels 0-255; `source` names it
    in errors. The pixel count is checked from the header, before anything is decoded."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise ImageError(
                    f"{source}: expected at most {MAX_PIXELS} pixels. Received: {opened.width}x{opened.height}",
                    "too_many_pixels",
                )
            opened.seek(0)
            image = ImageOps.exif_transpose(opened)
            image.load()
    except Image.DecompressionBombError as error:
        raise ImageError(
            f"{source}: expected at most {MAX_PIXELS} pixels. Received: {error}", "too_many_pixels"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{source}: expected an image (PNG, JPEG, BMP, GIF, TIFF or WebP). Received: "
            f"{'no bytes' if not data else 'data Pillow cannot identify as an image'}",
            "not_an_image",
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(
            f"{source}: expected a readable image. Received: a damaged file ({error})", "damaged_image"
        ) from None
    return flatten_alpha(image)


def flatten_alpha(image: Image.Image) -> np.ndarray:
    """Grey levels of `image`; transparent parts become paper that contrasts with the ink's own shade."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
        grey = np.asarray(rgba.convert("L"), dtype=np.float32)
        if alpha.min() < 0.98:
            opaque = alpha > 0.5
            ink_is_light = opaque.any() and float(grey[opaque].mean()) > 127.0
            paper = 0.0 if ink_is_light else 255.0
            blended: np.ndarray = grey * alpha + paper * (1.0 - alpha)
            return blended
        return grey
    if image.mode.startswith("I") or image.mode == "F":
        return _high_depth_grey(image)
    return np.asarray(image.convert("L"), dtype=np.float32)


def _high_depth_grey(image: Image.Image) -> np.ndarray:
    """Grey levels 0-255 of a 16- or 32-bit integer or a floating-point image. Pillow's own conversion to
    8 bits clips instead of scaling (a 16-bit white, 65535, and a mid-grey, 32768, both become 255)."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        # Float images hold 0-1 (most tools) or 0-255; anything else is clipped to those.
        top = 1.0 if float(np.nanmax(values, initial=0.0)) <= 1.0 else 255.0
    elif image.mode.startswith("I;16") or float(values.max(initial=0.0)) <= 65535.0:
        top = 65535.0
    else:
        top = 2.0**31 - 1.0  # mode I is signed 32-bit
    return np.clip(np.nan_to_num(values) * (255.0 / top), 0.0, 255.0).astype(np.float32)


def normalise_digit(grey: np.ndarray, source: str) -> np.ndarray:
    """MNIST-style uint8 (28, 28), white ink on black, from grey levels of any size and polarity."""
    if grey.ndim != 2 or min(grey.shape) < 2:
        raise ImageError(f"{source}: expected an image at least 2x2 pixels. Received: {grey.shape}", "too_small")
    ink = _ink_strength(grey)
    contrast = float(ink.max())
    if contrast < MIN_CONTRAST:
        raise ImageError(
            f"{source}: expected a digit darker or lighter than its background. Received: a blank "
            f"image (contrast {contrast:.0f} of 255 grey levels)",
            "blank_image",
        )
    ink = ink / contrast
    # Paper texture, JPEG noise and shadows are faint next to ink: drop everything under a quarter.
    ink = np.clip((ink - INK_FLOOR) / (1.0 - INK_FLOOR), 0.0, 1.0)
    top, bottom, left, right = _ink_box(ink)
    box = ink[top:bottom, left:right]
    box = _with_mnist_stroke(box)
    size = _scaled_size(box.shape, BOX_SIDE)
    small = np.asarray(Image.fromarray(box.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS))
    # Faint ink is brought up to full strength, but Lanczos's overshoot at a sharp edge (measured: 6% above the
    # strongest ink typically, up to 12%) is clipped rather than divided out, which dimmed the whole digit.
    small = np.clip(small / min(max(float(small.max()), 1e-6), 1.0), 0.0, 1.0)
    return _centre_by_mass(small)


def _ink_strength(grey: np.ndarray) -> np.ndarray:
    """How far each pixel is from the paper around it, 0-255, ink positive whichever is lighter."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    # A light border means dark ink on light paper (a scan, a photo of paper): invert, as MNIST is light-on-dark.
    light_paper = float(np.median(border)) > 127.5
    paper = _paper_level(grey, light_paper)
    ink: np.ndarray = np.clip(paper - grey, 0.0, None) if light_paper else np.clip(grey - paper, 0.0, None)
    return ink


def _paper_level(grey: np.ndarray, light_paper: bool) -> np.ndarray:
    """The paper's grey level at each pixel, so that uneven light (a photo's shadow, a vignette) is not ink.

    On a small copy, a morphological closing (opening for light ink) with a window a quarter of the
    image wide removes the strokes and keeps the paper; blurred and scaled back up, it follows gradients.
    """
    height, width = grey.shape
    size = _scaled_size(grey.shape, PAPER_SIDE)
    small = np.asarray(Image.fromarray(np.round(grey).astype(np.uint8), mode="L").resize(size, Image.Resampling.BOX))
    window = _odd(max(size) / 4.0)
    first, second = (np.max, np.min) if light_paper else (np.min, np.max)
    closed = sliding_extreme(sliding_extreme(small, window, first), window, second)
    paper = Image.fromarray(closed.astype(np.uint8), mode="L").filter(ImageFilter.GaussianBlur(window / 2))
    return np.asarray(paper.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def sliding_extreme(image: np.ndarray, window: int, reduce: Callable[..., np.ndarray]) -> np.ndarray:
    """`reduce` (np.max or np.min) over a square window around each pixel, as two 1-D passes (edges repeated)."""
    half = window // 2
    for axis in (0, 1):
        padding = [(0, 0), (0, 0)]
        padding[axis] = (half, half)
        windows = np.lib.stride_tricks.sliding_window_view(np.pad(image, padding, mode="edge"), window, axis=axis)
        image = reduce(windows, axis=-1)
    return image


def _scaled_size(shape: tuple[int, ...], longer_side: int) -> tuple[int, int]:
    """Pillow's (width, height) for an array of `shape` (height, width) scaled so its longer side is `longer_side`."""
    scale = longer_side / max(shape)
    return max(1, round(shape[1] * scale)), max(1, round(shape[0] * scale))


def _ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """Rows top:bottom and columns left:right holding the ink, ignoring specks that carry under 2% of a line's ink."""
    rows, columns = ink.sum(axis=1), ink.sum(axis=0)
    kept_rows = np.flatnonzero(rows > 0.02 * rows.max())
    kept_columns = np.flatnonzero(columns > 0.02 * columns.max())
    return int(kept_rows[0]), int(kept_rows[-1]) + 1, int(kept_columns[0]), int(kept_columns[-1]) + 1


def _with_mnist_stroke(box: np.ndarray) -> np.ndarray:
    """The box resized so its longer side is WORKING_SIDE, its strokes thickened or thinned towards MNIST's width."""
    size = _scaled_size(box.shape, WORKING_SIDE)
    image = Image.fromarray(np.round(box * 255.0).astype(np.uint8), mode="L").resize(size, Image.Resampling.LANCZOS)
    levels = np.asarray(image)
    mask = levels > 127
    hollow = _hollow_stroke_holes(levels > OUTLINE_LEVEL)
    if hollow.any():
        # Outlined strokes filled in, as the model knows digits drawn with solid strokes. The holes are grown by a
        # pixel over the line's faint inner edge (between OUTLINE_LEVEL and the mask's level), which would
        # otherwise stay a dark crack between the fill and the line and halve the stroke width measured below.
        grown = sliding_extreme(hollow, 3, np.max)
        image = Image.fromarray(np.where(grown, 255, levels).astype(np.uint8), mode="L")
        mask = np.asarray(image) > 127
    width = stroke_width(mask)
    target = MNIST_STROKE * WORKING_SIDE / BOX_SIDE
    if width and width < THIN_BELOW * target:
        # Widened on a margin: a pen's stroke adds half its width beyond the ends of the line, and MNIST's box
        # was measured around the whole stroke. Cropped again to the widened ink below.
        pen = _odd(target - width)
        image = ImageOps.expand(image, pen // 2 + 1, fill=0).filter(ImageFilter.MaxFilter(pen))
    elif width > THICK_ABOVE * target:
        image = image.filter(ImageFilter.MinFilter(_odd(width - target)))
    else:
        return np.asarray(image, dtype=np.float32) / 255.0
    ink = np.asarray(image, dtype=np.float32) / 255.0
    top, bottom, left, right = _ink_box(ink)
    return ink[top:bottom, left:right]


def _hollow_stroke_holes(mask: np.ndarray) -> np.ndarray:
    """The holes of a binary drawing that are the insides of outlined strokes (an outline font, a digit drawn
    as its contour, a sketch of doubled lines), to be filled, as opposed to a digit's own loops.

    The inside of an outlined stroke is a long band of even width, at most OUTLINED_MAX_WIDTH of the drawing
    wide, edged by lines much thinner than itself; a loop of a 0, 6, 8 or 9 is round, or oval and widest in
    its middle, or edged by strokes about as wide as itself, or, drawn in outline, far from the drawing's
    outside (behind its stroke's inside). Limit: a hairline 0 narrower than about a third of its height is
    as elongated as an outlined stroke and is filled (read as a thick 1)."""
    labels, count = _holes(mask)
    if not count:
        return np.zeros_like(mask)
    line = stroke_width(mask)
    area = np.bincount(labels.ravel(), minlength=count + 1).astype(np.float64)
    padded = np.pad(mask, 1)
    next_to_ink = padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
    outline = np.bincount(labels[next_to_ink & (labels > 0)], minlength=count + 1).astype(np.float64)
    half_outline = np.maximum(outline / 2.0, 1.0)
    thickness = area / half_outline  # a band of length L and width w: L*w / L
    fill = (
        (thickness <= OUTLINED_MAX_WIDTH * max(mask.shape))
        & (line <= OUTLINED_MAX_LINE * thickness)
        & (half_outline >= OUTLINED_MIN_ELONGATION * thickness)
    )
    doubtful = fill & (half_outline < OUTLINED_SURE_ELONGATION * thickness)
    if doubtful[1:].any():
        # Elongated, but no more than an oval loop (a narrow 0) can be: filled only if of even width, as a
        # stroke is, where an oval is about half again as wide in its middle as on average.
        widest = _widest_inside(np.where(doubtful[labels], labels, 0), count)
        fill &= ~doubtful | (widest <= OUTLINED_MAX_WIDEST * thickness)
    fill[0] = False
    if fill[1:].any():
        # A stroke's inside lies one line from the drawing's outside somewhere (every stroke has an outer edge); a
        # loop of an outlined digit lies behind its stroke's filled inside and a second line, never that close.
        near_outside = sliding_extreme(~mask & (labels == 0), _odd(OUTLINED_NEAR_OUTSIDE * line + 1), np.max)
        fill &= np.bincount(labels[near_outside & (labels > 0)], minlength=count + 1) > 0
    filled: np.ndarray = fill[labels]
    return filled


def _widest_inside(labels: np.ndarray, count: int) -> np.ndarray:
    """For each label 0..count, about the diameter of the widest disc that fits in its pixels: twice the
    number of erosions it survives, less one (erosions alternate between a square and a cross, an octagon
    close to a disc)."""
    widest = np.zeros(count + 1)
    remaining = labels > 0
    erosions = 0
    while remaining.any():
        widest[np.bincount(labels[remaining], minlength=count + 1) > 0] = 2 * erosions + 1
        erosions += 1
        padded = np.pad(remaining, 1)
        eroded = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        if erosions % 2 == 0:
            eroded &= padded[:-2, :-2] & padded[:-2, 2:] & padded[2:, :-2] & padded[2:, 2:]
        remaining = eroded
    return widest


def _holes(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels 1..n of the holes of a binary drawing (4-connected background regions that do not reach the
    image's edge), 0 elsewhere, and n. Found by merging the background's runs row by row (union-find), a few
    hundred runs where a pixel-by-pixel flood fill would visit tens of thousands of pixels in Python."""
    height, width = mask.shape
    edges = np.diff(np.pad(~mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    run_rows, run_starts = np.nonzero(edges == 1)  # a run holds columns start to end - 1
    run_ends = np.nonzero(edges == -1)[1]
    starts, ends = run_starts.tolist(), run_ends.tolist()
    parent = list(range(len(starts)))

    def root(run: int) -> int:
        while parent[run] != run:
            parent[run] = parent[parent[run]]
            run = parent[run]
        return run

    first_of_row = np.searchsorted(run_rows, np.arange(height + 1)).tolist()
    for row in range(1, height):
        above, above_end = first_of_row[row - 1], first_of_row[row]
        here, here_end = first_of_row[row], first_of_row[row + 1]
        while above < above_end and here < here_end:
            if starts[above] < ends[here] and starts[here] < ends[above]:
                a, b = root(above), root(here)
                parent[max(a, b)] = min(a, b)
            if ends[above] < ends[here]:
                above += 1
            else:
                here += 1
    roots = [root(run) for run in range(len(starts))]
    open_roots = {
        roots[run]
        for run in range(len(starts))
        if run_rows[run] in (0, height - 1) or starts[run] == 0 or ends[run] == width
    }
    hole_ids: dict[int, int] = {}
    labels = np.zeros((height, width), dtype=np.int32)
    for run, run_root in enumerate(roots):
        if run_root not in open_roots:
            labels[run_rows[run], starts[run] : ends[run]] = hole_ids.setdefault(run_root, len(hole_ids) + 1)
    return labels, len(hole_ids)


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary drawing: its area over half its outline (a stroke of length L, width w:
    L*w / L)."""
    area = int(mask.sum())
    if area == 0:
        return 0.0
    padded = np.pad(mask, 1)
    interior = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    outline = area - int(interior.sum())
    return area / max(outline / 2.0, 1.0)


def _odd(size: float) -> int:
    """An odd filter size near `size`, from 3 to 33."""
    return int(min(33, max(3, 2 * round(size / 2) + 1)))


def _centre_by_mass(small: np.ndarray) -> np.ndarray:
    """Place the (h, w <= 20) ink in a 28x28 frame with its centre of mass at the frame's centre."""
    height, width = small.shape
    total = float(small.sum())
    rows, columns = np.indices(small.shape)
    centre_row = float((rows * small).sum()) / total
    centre_column = float((columns * small).sum()) / total
    middle = (
        FRAME_SIDE / 2.0
    )  # MNIST's mean centre of mass: 14.0 in rows and columns (measured on 2,000 validation digits)
    top = int(np.clip(round(middle - centre_row), 0, FRAME_SIDE - height))
    left = int(np.clip(round(middle - centre_column), 0, FRAME_SIDE - width))
    frame = np.zeros((FRAME_SIDE, FRAME_SIDE), dtype=np.float32)
    frame[top : top + height, left : left + width] = small
    return np.round(frame * 255.0).astype(np.uint8)


def load_image(path: Path) -> LoadedImage:
    """Read and normalise one image; a problem with it is recorded rather than raised."""
    try:
        return LoadedImage(path, normalise_digit(read_grayscale(path), str(path)))
    except ImageError as error:
        return LoadedImage(path, None, str(error))
