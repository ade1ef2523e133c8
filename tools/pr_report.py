"""A Markdown report of what a change does to the pipeline's results, for a pull request.

    python -m tools.pr_report --base origin/main [--plots-out dvc_plots] >> "$GITHUB_STEP_SUMMARY"

It holds `dvc metrics diff` and `dvc params diff` against the base revision, and the plots whose files
changed; with `--plots-out`, `dvc plots diff` also renders every plot of both revisions into that folder
(an HTML page to upload as the job's artifact). Metrics and plots are committed to git (`cache: false`),
so this needs no DVC cache or remote.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tools.workspace import PROJECT_ROOT, dvc, run


def declared_plot_files(pipeline: dict[str, Any]) -> list[str]:
    """Every file `dvc.yaml` shows as a plot: top-level plot definitions and stage `plots` outputs."""
    files: list[str] = []
    for entry in pipeline.get("plots", []):
        if isinstance(entry, str):
            files.append(entry)
            continue
        for definition in entry.values():
            y = (definition or {}).get("y", {})
            files += list(y) if isinstance(y, dict) else []
    for stage in pipeline.get("stages", {}).values():
        files += [next(iter(item)) if isinstance(item, dict) else item for item in stage.get("plots", [])]
    return sorted(set(files))


def changed_files(repo: Path, base: str, paths: list[str]) -> list[str]:
    """Which of `paths` differ between `base` and the working tree (folders expand to their files)."""
    if not paths:
        return []
    output = run(["git", "diff", "--name-only", base, "--", *paths], repo)
    return sorted(line for line in output.splitlines() if line)


def section(title: str, body: str, empty: str) -> str:
    # DVC prints a table's header even when it has no rows.
    has_rows = sum(line.startswith("|") for line in body.splitlines()) > 2 or not body.lstrip().startswith("|")
    return f"### {title}\n\n{body.strip() if body.strip() and has_rows else empty}\n"


def build_report(repo: Path, base: str, plots_out: Path | None = None) -> str:
    """The report's Markdown for `repo`'s working tree against git revision `base`."""
    head = run(["git", "rev-parse", "--short", "HEAD"], repo).strip()
    base_commit = run(["git", "rev-parse", "--short", base], repo).strip()
    metrics = dvc(repo, "metrics", "diff", base, "--md")
    params = dvc(repo, "params", "diff", base, "--md")
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text())
    plots = changed_files(repo, base, declared_plot_files(pipeline))
    plot_lines = "\n".join(f"- `{path}`" for path in plots)
    if plots_out is not None:
        dvc(repo, "plots", "diff", base, "--out", str(plots_out))
        plot_lines += f"\n\nEvery plot of both revisions, side by side: `{plots_out}/index.html` (the job's artifact)."
    return "\n".join(
        [
            f"## Pipeline results: {head} against {base} ({base_commit})\n",
            section("Metrics", metrics, "No metric changed."),
            section("Params", params, "No param changed."),
            section("Plots whose data changed", plot_lines, "No plot's data changed."),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the git revision to compare with (the target branch)")
    parser.add_argument("--repo", type=Path, default=PROJECT_ROOT)
    parser.add_argument("--plots-out", type=Path, help="folder for the rendered plots of both revisions")
    args = parser.parse_args(argv)
    try:
        report = build_report(args.repo, args.base, args.plots_out.resolve() if args.plots_out else None)
    except (subprocess.SubprocessError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
