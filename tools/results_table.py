"""The README's results table, generated from `metrics/` (what the committed run wrote), so that no figure in it
can drift from the files `dvc metrics show` reads.

    .venv/bin/python -m tools.results_table --write    # rewrite it in README.md (between the results markers)
    .venv/bin/python -m tools.results_table --check    # exit 1 unless README.md holds the table metrics/ makes
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
        ("validation accuracy (held out of the training images)", f"{train['val_accuracy']:.2%}"),
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


def with_table(readme: str, table: str) -> str:
    if BEGIN not in readme or END not in readme:
        raise ValueError(f"README.md: expected the markers {BEGIN!r} and {END!r} around the results table")
    before, rest = readme.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    return before + table + after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite the table in README.md")
    action.add_argument("--check", action="store_true", help="exit 1 unless README.md holds this table")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT)
    args = parser.parse_args(argv)
    readme_path = args.root / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    updated = with_table(readme, results_table(args.root))
    if args.write:
        readme_path.write_text(updated, encoding="utf-8")
    elif updated != readme:
        print(
            "README.md: the results table differs from metrics/; run `python -m tools.results_table --write`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
