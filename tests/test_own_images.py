"""Your own images: MNIST-style normalisation, per-file errors, the `predict_images` command, and accuracy on test
digits redrawn as people's images (sizes, stroke widths, colours, positions, formats)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image, ImageFilter

from mnist_dvc.digit_arrays import LabelledImages
from mnist_dvc.model.architectures import Augmentation, build_compact_model, configure_tensorflow
from mnist_dvc.model.files import save_model
from mnist_dvc.own_digits import command as predict_images
from mnist_dvc.own_digits.predictions import OWN_IMAGES_COLUMNS, predict_image_files
from mnist_dvc.own_digits.reading import ImageError, image_paths, load_image, normalise_digit, read_grayscale
from mnist_dvc.own_digits.rendering import STYLES, Style, render, save_rendered
from mnist_dvc.params.compute import ComputeParams
from mnist_dvc.params.train import TrainParams
from mnist_dvc.sources.bundled import load_bundled, locate_bundled_file
from mnist_dvc.training import augmentation, compile_model, fit
from stages import predict
from tests.conftest import PROJECT_ROOT, ring


def stroke_digit(width: int = 60, height: int = 90) -> np.ndarray:
    """A dark '7' on light paper, as grey levels."""
    grey = np.full((height, width), 230.0, dtype=np.float32)
    grey[10:18, 8:52] = 20.0
    for row in range(18, 80):
        column = int(52 - (row - 18) * 0.45)
        grey[row, column - 4 : column + 4] = 20.0
    return grey


def correlation_of(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.corrcoef(first.ravel().astype(float), second.ravel().astype(float))[0, 1])


def test_output_is_mnist_shaped_white_on_black_and_centred() -> None:
    pixels = normalise_digit(stroke_digit(), "seven")
    assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
    assert pixels[0].max() == 0 and pixels[:, 0].max() == 0  # black border, white ink
    rows, columns = np.nonzero(pixels > 30)
    assert max(rows.max() - rows.min(), columns.max() - columns.min()) + 1 in (19, 20, 21)
    mass = pixels.astype(np.float64)
    centre = (np.indices(pixels.shape) * mass).sum(axis=(1, 2)) / mass.sum()
    assert np.all(np.abs(centre - 13.5) <= 1.0)


def test_light_and_dark_backgrounds_give_the_same_digit() -> None:
    dark_on_light = normalise_digit(stroke_digit(), "a")
    light_on_dark = normalise_digit(255.0 - stroke_digit(), "b")
    np.testing.assert_array_equal(dark_on_light, light_on_dark)


def test_the_aspect_ratio_is_kept() -> None:
    one = np.full((200, 200), 255.0, dtype=np.float32)
    one[20:180, 95:105] = 0.0  # a tall thin stroke: 160 x 10
    pixels = normalise_digit(one, "one")
    rows, columns = np.nonzero(pixels > 60)
    assert rows.max() - rows.min() + 1 >= 19 and columns.max() - columns.min() + 1 <= 5


def test_a_specks_far_away_do_not_shrink_the_digit() -> None:
    grey = stroke_digit(300, 300)
    grey[295, 295] = 0.0  # dust in a corner
    rows, _ = np.nonzero(normalise_digit(grey, "dusty") > 30)
    assert rows.max() - rows.min() + 1 >= 19


def test_a_shadow_across_the_page_is_not_ink() -> None:
    """A photo lit from one side: the paper goes from 240 to 110 grey, darker than the ink's contrast."""
    evenly_lit = stroke_digit(200, 200)
    shade = np.linspace(1.0, 0.45, 200, dtype=np.float32)[np.newaxis, :]
    shaded = normalise_digit(evenly_lit * shade, "shaded")
    reference = normalise_digit(evenly_lit, "even")
    correlation = correlation_of(shaded, reference)
    assert correlation > 0.9


def test_a_hairline_on_a_big_canvas_is_thickened_to_mnist_strokes() -> None:
    grey = np.full((600, 600), 255.0, dtype=np.float32)
    grey[100:500, 298:301] = 0.0  # 3-pixel stroke, 400 long: a 1-pixel hairline once shrunk 20x
    grey[100:103, 200:400] = 0.0
    pixels = normalise_digit(grey, "hairline")
    assert np.count_nonzero(pixels > 127, axis=1).max() >= 2  # the vertical stroke is at least 2 px wide
    assert pixels.max() == 255


def test_a_blank_image_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "blank.png"
    Image.new("L", (64, 64), 250).save(path)
    with pytest.raises(
        ImageError,
        match=r"blank.png: expected a digit darker or lighter than its background. "
        r"Received: a blank image \(contrast 0 of 255",
    ):
        normalise_digit(read_grayscale(path), str(path))


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        (
            "notes.png",
            b"just text",
            r"notes.png: expected an image \(PNG, JPEG, BMP, GIF, TIFF or WebP\). Received: data "
            r"Pillow cannot identify as an image",
        ),
        ("cut.png", None, r"cut.png: expected a readable image. Received: a damaged file"),
        ("missing.jpg", b"", r"missing.jpg: expected an image file. Received: no such file"),
        ("pipe.png", b"", r"pipe.png: expected an image file. Received: a named pipe"),
        (
            "bomb.png",
            b"",
            r"bomb.png: expected at most 50000000 pixels. Received: Image size \(400000000 pixels\) "
            r"exceeds limit",
        ),
    ],
)
def test_unreadable_files_are_errors_naming_the_file(
    tmp_path: Path, name: str, payload: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if payload is None:
        buffer = io.BytesIO()
        noise = np.random.default_rng(0).integers(0, 256, size=(120, 120), dtype=np.uint8)
        Image.fromarray(noise).save(buffer, format="PNG")
        path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    elif name == "pipe.png":
        os.mkfifo(path)  # reading it would wait forever
    elif name == "bomb.png":  # 20,000 x 20,000 pixels in a few kilobytes
        Image.new("1", (20_000, 20_000)).save(path, optimize=True)
    elif name != "missing.jpg":
        path.write_bytes(payload)
    with pytest.raises(ImageError, match=message):
        read_grayscale(path)


def test_light_ink_on_a_transparent_background_is_read() -> None:
    digit = stroke_digit()
    ink = 255.0 - digit  # opacity: where the stroke is
    rgba = np.zeros((*digit.shape, 4), dtype=np.uint8)
    rgba[..., :3] = 255  # white ink
    rgba[..., 3] = ink.astype(np.uint8)
    from mnist_dvc.own_digits.reading import flatten_alpha

    pixels = normalise_digit(flatten_alpha(Image.fromarray(rgba, mode="RGBA")), "white-on-transparent")
    np.testing.assert_array_equal(pixels, normalise_digit(stroke_digit(), "reference"))


def test_folders_expand_to_their_image_files_sorted_and_once(tmp_path: Path) -> None:
    for name in ("b.PNG", "a.jpg", "notes.txt", "c.gif"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    found = image_paths([tmp_path, tmp_path / "a.jpg", tmp_path / "other.bmp"])
    assert [path.name for path in found] == ["a.jpg", "b.PNG", "c.gif", "other.bmp"]


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configure_tensorflow(0, ComputeParams(portable_kernels=True, threads=0))
    path = tmp_path_factory.mktemp("model") / "model.keras"
    save_model(build_compact_model(Augmentation(0.0, 0.0, 0.0), 0), path)
    return path


def test_the_images_command_predicts_the_rest_and_reports_each_failure(
    untrained_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    Image.fromarray(stroke_digit().astype(np.uint8)).save(folder / "seven.png")
    Image.fromarray(stroke_digit().astype(np.uint8)).convert("RGB").save(folder / "seven.jpg")
    Image.new("RGB", (50, 50), (255, 255, 255)).save(folder / "empty.bmp")
    (folder / "broken.gif").write_bytes(b"GIF89a broken")
    out = tmp_path / "out"
    status = predict_images.main([str(folder), "--model", str(untrained_model), "--out-dir", str(out)])
    captured = capsys.readouterr()
    assert status == 1
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert [Path(row["file"]).name for row in rows] == ["broken.gif", "empty.bmp", "seven.jpg", "seven.png"]
    assert list(rows[0]) == list(OWN_IMAGES_COLUMNS)
    for row in rows[2:]:
        assert row["error"] == "" and row["label"] in "0123456789"
        assert float(row["confidence"]) >= float(row["second_confidence"]) >= float(row["third_confidence"])
    assert "Pillow cannot identify" in rows[0]["error"] and "blank image" in rows[1]["error"]
    assert (out / "contact_sheet.png").read_bytes()[:4] == b"\x89PNG"
    assert "2 of 4 images predicted" in captured.out
    assert captured.err.count("error: ") == 2 and "broken.gif" in captured.err and "empty.bmp" in captured.err


def test_the_images_command_with_no_images_is_an_error(
    untrained_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        predict_images.main([str(tmp_path), "--model", str(untrained_model), "--out-dir", str(tmp_path / "out")]) == 1
    )
    assert "expected image files (.png, .jpg" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_images_command_runs_a_litert_model_without_importing_tensorflow(
    untrained_model: Path, tmp_path: Path
) -> None:
    """The fast path: the export stage's `.tflite` file, read by LiteRT's interpreter alone, gives the Keras
    model's predictions in a process that never imports TensorFlow or Keras."""
    import subprocess
    import sys

    from mnist_dvc.model.export import to_litert
    from mnist_dvc.model.files import load_model

    model = load_model(untrained_model)
    last = model.layers[-1]  # a steeper last layer: fresh weights would give ten nearly equal probabilities
    kernel, bias = last.get_weights()
    last.set_weights([kernel * 50.0, bias])
    (tmp_path / "model.tflite").write_bytes(to_litert(model))
    steep_keras = tmp_path / "model.keras"
    save_model(model, steep_keras)
    folder = tmp_path / "mine"
    folder.mkdir()
    for width in (40, 60, 80):
        Image.fromarray(stroke_digit(width=width).astype(np.uint8)).save(folder / f"seven-{width}.png")
    script = (
        "import sys\nfrom mnist_dvc.own_digits import command as predict_images\n"
        f"status = predict_images.main([{str(folder)!r}, '--model', {str(tmp_path / 'model.tflite')!r}, "
        f"'--out-dir', {str(tmp_path / 'litert')!r}])\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('tensorflow', 'keras')))\n"
        "sys.exit(status)\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.splitlines()[-1] == "[]"
    assert predict_images.main([str(folder), "--model", str(steep_keras), "--out-dir", str(tmp_path / "keras")]) == 0
    litert_rows, keras_rows = (
        list(csv.DictReader((tmp_path / name / "predictions.csv").open())) for name in ("litert", "keras")
    )
    assert [row["file"] for row in litert_rows] == [row["file"] for row in keras_rows] and len(litert_rows) == 3
    for litert_row, keras_row in zip(litert_rows, keras_rows, strict=True):
        assert litert_row["label"] == keras_row["label"]
        assert abs(float(litert_row["confidence"]) - float(keras_row["confidence"])) <= 1e-4


def test_a_missing_or_broken_litert_model_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Image.fromarray(stroke_digit().astype(np.uint8)).save(tmp_path / "seven.png")
    missing = tmp_path / "models/model.tflite"
    assert predict_images.main([str(tmp_path / "seven.png"), "--model", str(missing)]) == 1
    assert (
        f"{missing}: expected a LiteRT model (run `dvc repro export`). Received: no such file"
        in capsys.readouterr().err
    )
    (tmp_path / "broken.tflite").write_bytes(b"not a flatbuffer" * 8)
    assert predict_images.main([str(tmp_path / "seven.png"), "--model", str(tmp_path / "broken.tflite")]) == 1
    assert (
        f"{tmp_path / 'broken.tflite'}: expected a LiteRT (.tflite) flatbuffer. Received: 128 bytes it cannot "
        "read" in capsys.readouterr().err
    )


def test_the_predict_stage_requires_all_its_arguments() -> None:
    with pytest.raises(SystemExit) as exited:
        predict.main(["--prepared-dir", "data/prepared"])
    assert exited.value.code == 2


# --- accuracy on redrawn test digits --------------------------------------------------------------

RENDERED_PER_STYLE = 60


@pytest.fixture(scope="module")
def mnist_model_and_digits() -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """A compact CNN trained briefly (1 epoch on 12,000 MNIST training images) and unseen test digits.

    Batches of 16 give BatchNorm's moving statistics (momentum 0.99) enough steps (750) to forget their
    initial values: with 200-odd steps the model is right in training mode and wrong in inference."""
    splits = load_bundled(locate_bundled_file())
    params = TrainParams(
        model="compact",
        compact_filters=(32, 64, 64, 64),
        random_seed=0,
        epochs=1,
        batch_size=16,
        learning_rate=0.005,
        schedule="cosine",
        warmup_epochs=0,
        early_stopping_patience=0,
        label_smoothing=0.1,
        max_rotation_degrees=10.0,
        max_zoom=0.1,
        max_shift_pixels=2.0,
        max_elastic_pixels=0.0,
        max_stroke_width_change=0.0,
        redrawn_share=0.0,
        redrawn_pen_widths=(1.5, 4.0),
        include_validation=False,
    )
    configure_tensorflow(params.random_seed, ComputeParams(portable_kernels=True, threads=0))
    model = build_compact_model(augmentation(params), params.random_seed)
    images, labels = splits.train_images[:12_000, ..., np.newaxis], splits.train_labels[:12_000]
    compile_model(model, params, steps_per_epoch=-(-len(labels) // params.batch_size))
    fit(model, images, labels, LabelledImages(images[:500], labels[:500]), params, [])
    test = slice(0, RENDERED_PER_STYLE)
    return model, splits.test_images[test], splits.test_labels[test]


def test_redrawn_test_digits_are_recognised_as_well_as_the_originals(
    mnist_model_and_digits: tuple[keras.Model, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    model, digits, labels = mnist_model_and_digits
    original = float(np.mean(model.predict(digits[..., np.newaxis], verbose=0).argmax(axis=1) == labels))
    per_style = {}
    for style in STYLES:
        paths = [
            save_rendered(digit, style, seed, tmp_path / f"{style.name}-{seed}") for seed, digit in enumerate(digits)
        ]
        predictions = predict_image_files(lambda pixels: model.predict(pixels, batch_size=256, verbose=0), paths)
        assert all(prediction.error is None for prediction in predictions), style.name
        per_style[style.name] = float(np.mean(np.array([p.top_labels[0] for p in predictions]) == labels))
    overall = float(np.mean(list(per_style.values())))
    print(f"original 28x28: {original:.3f}; redrawn: {overall:.3f}; per style: {per_style}")
    assert original >= 0.9
    assert overall >= original - 0.03, per_style
    assert min(per_style.values()) >= original - 0.1, per_style


def test_rendering_is_deterministic() -> None:
    digit = np.zeros((28, 28), np.uint8)
    digit[5:23, 12:16] = 255
    style: Style = STYLES[1]
    assert render(digit, style, 3).tobytes() == render(digit, style, 3).tobytes()
    assert load_image  # the loader the command uses is the one these tests exercise


def _save(image: Image.Image, path: Path, **options: object) -> Path:
    image.save(path, **options)
    return path


def _image_modes(tmp_path: Path) -> dict[str, Path]:
    """The '7' of `stroke_digit` saved in each mode and bit depth people's files come in."""
    grey8 = np.round(stroke_digit()).astype(np.uint8)
    eight_bit = Image.fromarray(grey8, mode="L")
    sixteen = grey8.astype(np.uint16) * 257
    rotated = eight_bit.rotate(90, expand=True)  # stored on its side, with EXIF saying "rotate back"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    palette = eight_bit.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    transparent = palette.copy()
    transparent.info["transparency"] = int(np.asarray(palette)[0, 0])  # the paper's colour is transparent
    frames = [eight_bit, Image.fromarray(255 - grey8, mode="L")]
    return {
        "8-bit PNG": _save(eight_bit, tmp_path / "l8.png"),
        "1-bit PNG": _save(eight_bit.point(lambda value: 255 if value > 128 else 0).convert("1"), tmp_path / "one.png"),
        "16-bit PNG": _save(Image.fromarray(sixteen), tmp_path / "i16.png"),
        "32-bit integer TIFF": _save(Image.fromarray(sixteen.astype(np.int32) * 32768), tmp_path / "i32.tif"),
        "float TIFF (0-1)": _save(Image.fromarray(grey8.astype(np.float32) / 255.0), tmp_path / "f.tif"),
        "palette with transparency": _save(transparent, tmp_path / "p.png"),
        "CMYK TIFF": _save(eight_bit.convert("CMYK"), tmp_path / "cmyk.tif"),
        "EXIF-rotated JPEG": _save(rotated, tmp_path / "exif.jpg", exif=exif, quality=95),
        "animated GIF (first frame)": _save(frames[0], tmp_path / "anim.gif", save_all=True, append_images=frames[1:]),
    }


def test_every_mode_and_bit_depth_reads_as_the_8_bit_digit(tmp_path: Path) -> None:
    files = _image_modes(tmp_path)
    reference = normalise_digit(read_grayscale(files["8-bit PNG"]), "8-bit").astype(np.float64)
    for kind, path in files.items():
        with Image.open(path) as opened:
            mode = opened.mode
        pixels = normalise_digit(read_grayscale(path), kind).astype(np.float64)
        difference = np.abs(pixels - reference).mean()
        # Lossless modes give the reference to rounding; JPEG and 1-bit thresholding move edges a little.
        assert difference < (12.0 if kind in ("EXIF-rotated JPEG", "1-bit PNG") else 1.0), (kind, mode, difference)


def test_the_example_digits_are_what_make_example_digits_draws(tmp_path: Path) -> None:
    """data/own_digits/ holds exactly what `make example-digits` draws (seeded): the same 30 files, byte for byte."""
    from mnist_dvc.own_digits.example_drawings import main as draw_examples

    assert draw_examples([str(tmp_path)]) == 0
    committed = PROJECT_ROOT / "data/own_digits"
    drawn = {path.name: path.read_bytes() for path in sorted(tmp_path.iterdir())}
    assert len(drawn) == 30
    assert drawn == {name: (committed / name).read_bytes() for name in drawn}


def test_holes_are_the_background_regions_the_edge_cannot_reach() -> None:
    from mnist_dvc.own_digits.reading import _holes

    two_rings = np.concatenate([ring(40, 15, 8), ring(40, 15, 8)], axis=1)
    labels, count = _holes(two_rings)
    assert count == 2 and set(np.unique(labels)) == {0, 1, 2}
    assert (labels > 0).sum() == (~two_rings[:, :40] & ring(40, 8, 0)).sum() * 2
    c_shape = ring(40, 15, 8)
    c_shape[18:22, 20:] = False  # opened on the right: its inside reaches the edge
    assert _holes(c_shape)[1] == 0


def test_an_outlined_digit_reads_as_the_solid_one() -> None:
    """A 7 whose strokes are drawn as their outline (an outline font, a digit traced around its edge) is filled
    in: it normalises close to the solid 7, where left hollow it is two thin parallel lines per stroke."""
    solid = np.pad(stroke_digit() < 128, 20)  # strokes 8 pixels wide, on a margin
    big = Image.fromarray(solid).resize((solid.shape[1] * 4, solid.shape[0] * 4), Image.Resampling.NEAREST)
    wide = np.asarray(big.filter(ImageFilter.MaxFilter(9))) > 0  # strokes 40 wide
    inside = np.asarray(Image.fromarray(wide).filter(ImageFilter.MinFilter(7))) > 0
    outline = wide & ~inside
    hollow = normalise_digit(np.where(outline, 0.0, 255.0).astype(np.float32), "outlined 7")
    filled = normalise_digit(np.where(wide, 0.0, 255.0).astype(np.float32), "solid 7")
    correlation = correlation_of(hollow, filled)
    assert correlation > 0.9


@pytest.mark.parametrize(
    ("line", "width"), [(3, 1.0), (40, 1.0), (6, 0.4)], ids=["hairline", "thick", "narrow-hairline"]
)
def test_the_loop_of_a_zero_stays_open(line: int, width: float) -> None:
    """A digit's own loop is round and wide: it is not taken for the inside of an outlined stroke, whether the
    0 is drawn with a hairline or a thick pen, round or as a narrow oval (as elongated as some outlined strokes,
    but wider in its middle)."""
    rows, columns = np.indices((400, 400))
    radius = np.hypot(rows - 200, (columns - 200) / width)
    zero = (radius < 150) & (radius >= 150 - line)
    pixels = normalise_digit(np.where(zero, 0.0, 255.0).astype(np.float32), "zero")
    assert pixels[14, 14] < 100 and pixels.max() == 255


def test_the_fine_pen_draws_around_a_filled_loop() -> None:
    """Where a thick pen filled a loop in (a blob far wider than its strokes), the fine pen goes around the blob's
    edge, so the loop stays a loop: the centre line alone would make it one bare line."""
    from mnist_dvc.own_digits.reading import _holes
    from mnist_dvc.own_digits.rendering import fine_pen_path

    drawing = np.zeros((200, 200), bool)
    drawing[90:110, 10:190] = True  # a stroke 20 wide
    drawing |= ring(200, 45, 0)  # a filled blob 90 wide in its middle
    path = fine_pen_path(drawing)
    assert _holes(path)[1] >= 1
    assert path[95:105, 25].any() and path[95:105, 170].any()  # the stroke's centre line is still drawn


def test_digits_typed_in_an_outline_font_normalise_like_the_solid_ones() -> None:
    """DejaVu Sans (shipped with matplotlib) typed solid and as outlines only: after filling, each hollow digit
    is close to its solid self, loops kept (the 0, 6, 8 and 9 keep their holes)."""
    import matplotlib

    from mnist_dvc.own_digits.rendering import render_typed

    font = Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"
    for digit in range(10):
        solid, hollow = (
            normalise_digit(np.asarray(render_typed(font, digit, 120, outline, seed=digit), np.float32), str(digit))
            for outline in (False, True)
        )
        correlation = correlation_of(solid, hollow)
        assert correlation > 0.8, (digit, correlation)


def outlined_seven(faint_level: float = 0.0, blur: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The '7' of `stroke_digit` with strokes 16 wide, as grey levels on white: outlined (a line 2 pixels wide just
    outside each stroke, black, except its right half at `faint_level`; blurred by `blur`) and solid."""
    solid = np.pad(stroke_digit() < 128, 20)
    wide = np.asarray(Image.fromarray(solid).filter(ImageFilter.MaxFilter(9))) > 0
    around = np.asarray(Image.fromarray(wide).filter(ImageFilter.MaxFilter(5))) > 0
    line_level = np.where(np.arange(wide.shape[1]) < wide.shape[1] // 2, 0.0, faint_level)[np.newaxis, :]
    outline = Image.fromarray(np.where(around & ~wide, line_level, 255.0).astype(np.uint8))
    if blur:
        outline = outline.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(outline, dtype=np.float32), np.where(wide, 0.0, 255.0).astype(np.float32)


def test_an_outline_with_soft_edges_is_filled_without_a_seam() -> None:
    """An antialiased or scanned outline fades at its edges: the fill reaches over the faint inner edge to the line,
    so the filled stroke is solid and as wide as the outline, not a fill and a line parted by a dark seam (which
    the stroke-width measure would take for thin strokes and thicken into a blob)."""
    outline, solid = outlined_seven(blur=1.0)
    hollow, filled = normalise_digit(outline, "soft outlined 7"), normalise_digit(solid, "solid 7")
    assert correlation_of(hollow, filled) > 0.9
    assert 0.9 < float(hollow.sum()) / float(filled.sum()) < 1.25


def test_an_outline_partly_drawn_faint_still_closes_and_is_filled() -> None:
    """Half the outline drawn at about half the ink's strength (a light pencil, a faint scan) still encloses the
    stroke's inside, which is filled: the digit is not read as two parallel lines per stroke."""
    outline, solid = outlined_seven(faint_level=115.0)
    hollow, filled = normalise_digit(outline, "faint outlined 7"), normalise_digit(solid, "solid 7")
    assert correlation_of(hollow, filled) > 0.85  # left open: 0.61


def test_the_loop_of_an_outlined_digit_stays_open() -> None:
    """A narrow 0 drawn as the outline of its stroke: the stroke's inside (a band one line from the outside) is
    filled, and the 0's loop, a band as even and about as wide but behind the stroke's inside, stays open."""
    from mnist_dvc.own_digits.reading import _hollow_stroke_holes

    drawing = np.zeros((280, 140), bool)
    drawing[20:260, 40:100] = True  # the outer line, 2 pixels wide, around a stroke 16 wide ...
    drawing[22:258, 42:98] = False
    drawing[38:242, 58:82] = True  # ... and the inner line around the 0's loop, 20 wide and 200 long
    drawing[40:240, 60:80] = False
    filled = _hollow_stroke_holes(drawing)
    assert filled[30, 70] and filled[140, 50] and not filled[140, 70]


def test_lanczos_overshoot_does_not_dim_the_digit() -> None:
    """Shrinking a sharp-edged drawing overshoots the ink's level by a few percent at its edges; that is clipped,
    so a solid stroke's core stays full white, as MNIST's do, rather than the whole digit being scaled down."""
    grey = np.full((120, 120), 255.0, dtype=np.float32)
    grey[15:105, 50:72] = 0.0  # a bold upright bar beside a slanted one
    for row in range(15, 105):
        grey[row, 30 + (row - 15) // 3 : 40 + (row - 15) // 3] = 0.0
    pixels = normalise_digit(grey, "two bars")
    assert np.median(pixels[pixels >= 128]) == 255  # divided by the overshoot instead: 223


def test_the_outlined_style_closes_around_strokes_that_run_to_the_frame_edge() -> None:
    """The hollow style's outline goes all round each stroke, also where the 28x28 digit's stroke touches the
    frame's edge, and lies just outside the stroke: its one hole is the stroke itself, scaled."""
    from mnist_dvc.own_digits.reading import _holes
    from mnist_dvc.own_digits.rendering import outlined

    digit = np.zeros((28, 28), np.uint8)
    digit[:, 12:16] = 255  # a bar from the top edge to the bottom one
    drawn = np.asarray(outlined(digit, 140)) > 64
    labels, count = _holes(drawn)
    assert count == 1
    assert 0.8 < (labels > 0).sum() / (4 * 28 * 25) < 1.1
