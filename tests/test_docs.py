"""The README as an entry (short, its results generated from metrics/), the docs beside it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tools.results_table import main as results_table_main
from tools.workspace import PROJECT_ROOT


def test_the_readme_is_an_entry_not_a_notebook() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert "make repro" in readme and "make test" in readme


def test_the_readme_results_table_is_the_one_metrics_makes() -> None:
    assert results_table_main(["--check"]) == 0, "run `python -m tools.results_table --write`"


def test_a_changed_metric_makes_the_results_check_fail(tmp_path: Path) -> None:
    shutil.copy(PROJECT_ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(PROJECT_ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("_build"))
    shutil.copytree(PROJECT_ROOT / "metrics", tmp_path / "metrics")
    (tmp_path / "bench").mkdir()  # the recipe's validation figures, which the table shows
    shutil.copy(PROJECT_ROOT / "bench/recipe_validation.json", tmp_path / "bench/recipe_validation.json")
    evaluate = json.loads((tmp_path / "metrics/evaluate.json").read_text())
    evaluate["test"]["errors"] += 1
    (tmp_path / "metrics/evaluate.json").write_text(json.dumps(evaluate))
    assert results_table_main(["--check", "--root", str(tmp_path)]) == 1
    assert results_table_main(["--write", "--root", str(tmp_path)]) == 0
    assert f"({evaluate['test']['errors']} errors)" in (tmp_path / "README.md").read_text()
    assert f"({evaluate['test']['errors']} errors)" in (tmp_path / "docs/results.md").read_text()


def test_every_doc_page_is_in_the_site_index() -> None:
    pages = {path.stem for path in (PROJECT_ROOT / "docs").glob("*.md")} - {"index"}
    index = (PROJECT_ROOT / "docs/index.md").read_text()
    assert pages and all(f"\n{page}\n" in index for page in pages)
