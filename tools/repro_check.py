"""CI reproducibility gate: is the committed `dvc.lock` what the committed code and params produce?

Run on a fresh clone with no DVC cache (`make repro-check`). It fails, naming the stage and the
dependency, when

1. code or params changed since `dvc.lock` was written (someone changed them without rerunning the
   pipeline), or a committed metrics file no longer matches the lock; or
2. the pipeline is not deterministic: two runs of it on a small profile, each in a new repository,
   do not produce byte-identical outputs (compared through their `dvc.lock` hashes).

Data that is simply absent (no DVC cache on a fresh clone) is not an error.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tools.workspace import PROJECT_ROOT, SMALL_PROFILE, dvc, make_workspace

# What `dvc status` says of a file that is merely not there: no cache on a fresh clone.
_ABSENT = {"deleted", "not in cache"}


def pipeline_outputs(pipeline: dict[str, Any]) -> set[str]:
    """Every path a stage of `dvc.yaml` writes (outs, metrics, plots)."""
    paths = set()
    for stage in pipeline.get("stages", {}).values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                paths.add(next(iter(entry)) if isinstance(entry, dict) else entry)
    return paths


def _is_output(path: str, outputs: set[str]) -> bool:
    return any(path == out or path.startswith(out + "/") for out in outputs)


def stale_entries(status: dict[str, list[Any]], outputs: set[str]) -> list[str]:
    """Human-readable reasons, from `dvc status --json`, why dvc.lock does not match the checkout."""
    reasons = []
    for stage, entries in status.items():
        for entry in entries:
            if isinstance(entry, str):
                reasons.append(f"stage '{stage}': {entry} since dvc.lock")
                continue
            for path, state in entry.get("changed deps", {}).items():
                if isinstance(state, dict):
                    reasons += [f"stage '{stage}': param {key} {value} since dvc.lock" for key, value in state.items()]
                elif not (state in _ABSENT and _is_output(path, outputs)):
                    reasons.append(f"stage '{stage}': dependency {path} {state} since dvc.lock")
            for path, state in entry.get("changed outs", {}).items():
                if state not in _ABSENT:
                    reasons.append(f"stage '{stage}': output {path} {state}: it is not what dvc.lock records")
            for key in sorted(set(entry) - {"changed deps", "changed outs"}):
                reasons.append(f"stage '{stage}': {key}: {entry[key]}")
    return reasons


def lock_differences(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """Outputs whose recorded hash differs between two `dvc.lock` documents, as 'stage: path'."""
    differences = []
    for stage in sorted(set(first.get("stages", {})) | set(second.get("stages", {}))):
        hashes = [{out["path"]: out.get("md5") for out in lock.get("stages", {}).get(stage, {}).get("outs", [])}
                  for lock in (first, second)]
        for path in sorted(set(hashes[0]) | set(hashes[1])):
            if hashes[0].get(path) != hashes[1].get(path):
                differences.append(f"stage '{stage}': {path} ({hashes[0].get(path)} vs {hashes[1].get(path)})")
    return differences


def check_lock_is_current(repo: Path) -> list[str]:
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text())
    status = json.loads(dvc(repo, "status", "--json"))
    return stale_entries(status, pipeline_outputs(pipeline))


def check_small_profile_is_deterministic(scratch: Path) -> list[str]:
    locks = []
    for name in ("first", "second"):
        workspace = make_workspace(scratch / name, SMALL_PROFILE)
        dvc(workspace, "repro")
        locks.append(yaml.safe_load((workspace / "dvc.lock").read_text()))
    return lock_differences(*locks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-determinism", action="store_true", help="only compare dvc.lock with the checkout")
    args = parser.parse_args(argv)

    stale = check_lock_is_current(PROJECT_ROOT)
    for reason in stale:
        print(f"repro-check: {reason}", file=sys.stderr)
    if stale:
        print("repro-check: FAILED: dvc.lock is stale. Run `dvc repro` and commit dvc.lock and metrics/.",
              file=sys.stderr)
        return 1
    print("repro-check: dvc.lock matches the committed code, params and metrics")
    if args.skip_determinism:
        return 0

    with tempfile.TemporaryDirectory(prefix="repro-check-") as scratch:
        differences = check_small_profile_is_deterministic(Path(scratch))
    for difference in differences:
        print(f"repro-check: not reproducible: {difference}", file=sys.stderr)
    if differences:
        print("repro-check: FAILED: two runs of the small profile gave different outputs.", file=sys.stderr)
        return 1
    print("repro-check: two runs of the small profile gave byte-identical outputs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
