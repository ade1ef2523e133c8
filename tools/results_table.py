"""The results tables of README.md and docs/results.md, generated from `metrics/` (what the committed run wrote),
so that no figure in them can drift from the files `dvc metrics show` reads.

    .venv/bin/python -m tools.results_table --write    # rewrite them (between their markers)
    .venv/bin/python -m tools.results_table --check    # exit 1 unless both files hold the tables metrics/ makes
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from tools.workspace import PROJECT_ROOT

BEGIN = "<!-- results table: generated from metrics/ by `python -m tools.results_table --write` -->"
END = "<!-- end of results table -->"


def _json(root: Path, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((root / "metrics" / name).read_text(encoding="utf-8"))
    return document


def results_table(root: Path) -> str:
    """The table (with its markers) of the run whose metrics are in `root`/metrics."""
    test = _json(root, "evaluate.json")["test"]
    train = _json(root, "train.json")
    export = _json(root, "export.json")
    with (root / "metrics/per_class.csv").open(encoding="utf-8") as handle:
        per_class = list(csv.DictReader(handle))
    weakest = min(per_class, key=lambda row: float(row["f1"]))
    kilobytes = {name: export[name]["bytes"] / 1000 for name in ("onnx", "litert", "litert_int8")}
    rows = [
        (
            "test accuracy (the 10,000 official MNIST test images)",
            f"**{test['accuracy']:.2%}** ({test['errors']} errors)",
        ),
        ("test loss (cross-entropy; training used label smoothing)", f"{test['loss']:.4f}"),
        validation_row(root, train),
        ("epochs (the kept one)", f"{train['epochs_run']} (epoch {train['kept_epoch']})"),
        ("weakest digit (F1)", f"{weakest['digit']} ({float(weakest['f1']):.2%})"),
        (
            "exported: ONNX, LiteRT float32, LiteRT int8",
            f"{kilobytes['onnx']:.0f} KB, {kilobytes['litert']:.0f} KB, {kilobytes['litert_int8']:.0f} KB "
            f"(int8 test accuracy {export['litert_int8']['test_accuracy']:.2%})",
        ),
    ]
    lines = [BEGIN, "", "| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows), "", END]
    return "\n".join(lines)


def validation_row(root: Path, train: dict[str, Any]) -> tuple[str, str]:
    """This run's validation accuracy; or, when the model also trained on the validation images, that of the
    runs that chose its recipe (bench/recipe_validation.json), said as such."""
    if "val_accuracy" in train:
        return ("validation accuracy (held out of the training images)", f"{train['val_accuracy']:.2%}")
    chosen: dict[str, Any] = json.loads((root / "bench/recipe_validation.json").read_text(encoding="utf-8"))
    return (
        f"validation accuracy of the recipe (its runs without the validation split; this model trained on all "
        f"{train['training_images']:,})",
        f"{chosen['val_accuracy_mean']:.2%} (mean of seeds {', '.join(map(str, chosen['seeds']))})",
    )


PER_CLASS_BEGIN = (
    "<!-- per-class table: generated from metrics/per_class.csv by `python -m tools.results_table --write` -->"
)
PER_CLASS_END = "<!-- end of per-class table -->"


def per_class_table(root: Path) -> str:
    """Precision, recall and F1 of each digit in %, from `root`/metrics/per_class.csv (with the markers)."""
    with (root / "metrics/per_class.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    lines = [
        PER_CLASS_BEGIN,
        "",
        "| digit | " + " | ".join(row["digit"] for row in rows) + " |",
        "|---|" + "---|" * len(rows),
        *(
            f"| {name} | " + " | ".join(f"{100 * float(row[name]):.2f}" for row in rows) + " |"
            for name in ("precision", "recall", "f1")
        ),
        "",
        PER_CLASS_END,
    ]
    return "\n".join(lines)


def with_block(text: str, block: str, begin: str, end: str, name: str) -> str:
    if begin not in text or end not in text:
        raise ValueError(f"{name}: expected the markers {begin!r} and {end!r} around the generated table")
    before, rest = text.split(begin, 1)
    _, after = rest.split(end, 1)
    return before + block + after


def updated_files(root: Path) -> dict[Path, str]:
    """{file: its text with every generated table as `root`/metrics/ makes it}."""
    summary, per_class = results_table(root), per_class_table(root)
    readme, results = root / "README.md", root / "docs/results.md"
    results_text = with_block(results.read_text(encoding="utf-8"), summary, BEGIN, END, "docs/results.md")
    return {
        readme: with_block(readme.read_text(encoding="utf-8"), summary, BEGIN, END, "README.md"),
        results: with_block(results_text, per_class, PER_CLASS_BEGIN, PER_CLASS_END, "docs/results.md"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite the tables in README.md and docs/results.md")
    action.add_argument("--check", action="store_true", help="exit 1 unless both hold the tables metrics/ makes")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT)
    args = parser.parse_args(argv)
    stale = 0
    for path, text in updated_files(args.root).items():
        if args.write:
            path.write_text(text, encoding="utf-8")
        elif text != path.read_text(encoding="utf-8"):
            print(
                f"{path}: a results table differs from metrics/; run `python -m tools.results_table --write`",
                file=sys.stderr,
            )
            stale += 1
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
