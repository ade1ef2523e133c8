"""`make verify`: prove that the committed code and params produce the committed dvc.lock, byte for byte.

Run on any checkout (a fresh clone needs no DVC cache). It fails, naming each culprit, when

1. the checkout does not match dvc.lock: code or params changed since it was written, or a file that
   git holds for a stage (metrics, plots) was modified, deleted or added, or the default remote is a
   shared one (S3, ...) and lacks an output that dvc.lock records (a lock committed without `dvc push`); or
2. the whole pipeline, run from scratch in a new repository with an empty cache and no run-cache
   (every stage computed, none restored), writes any output whose hash is not the one dvc.lock records.

When outputs differ, it says on what platform dvc.lock was made (from `dvc.lock.platform.json`, written
by `make repro`) and how this run's platform differs, since that is where such a difference comes from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from mnist_dvc.params.compute import ComputeParams
from mnist_dvc.params.loading import load_section
from mnist_dvc.process_setup import filter_native_stderr, prepare_tensorflow_environment
from mnist_dvc.reproducible_compute import describe_compute, fact_differences, platform_facts
from tools.remote import RemoteError, configured_remote, missing_from_remote
from tools.workspace import ALL_STAGES, PROJECT_ROOT, THIS_MACHINE, Machine, dvc, make_workspace, stages_run

# What `dvc status` says of a file that is merely not there: no cache on a fresh clone.
_ABSENT = {"deleted", "not in cache"}
PLATFORM_RECORD = "dvc.lock.platform.json"


# --- the checkout against dvc.lock -------------------------------------------------------------------


def pipeline_outputs(pipeline: dict[str, Any], committed_only: bool = False) -> set[str]:
    """Every path a stage of `dvc.yaml` writes (outs, metrics, plots); with `committed_only`, those
    with `cache: false`, which git holds (so a fresh clone has them)."""
    paths = set()
    for stage in pipeline.get("stages", {}).values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
                if not committed_only or (options or {}).get("cache") is False:
                    paths.add(path)
    return paths


def stages_up_to(repo: Path, target: str) -> set[str]:
    """`target` and every stage whose outputs it depends on, directly or not (what `dvc repro target` runs)."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text()).get("stages", {})
    found, waiting = set(), [target]
    while waiting:
        stage = waiting.pop()
        if stage in found or stage not in stages:
            continue
        found.add(stage)
        for dependency in stages[stage].get("deps", []):
            waiting += [
                other for other in stages if _is_under(dependency, pipeline_outputs({"stages": {other: stages[other]}}))
            ]
    return found


def _is_under(path: str, outputs: set[str]) -> bool:
    return any(path == out or path.startswith(out + "/") for out in outputs)


def stale_entries(status: dict[str, list[Any]], outputs: set[str], committed: set[str]) -> list[str]:
    """Human-readable reasons, from `dvc status --json`, why dvc.lock does not match the checkout.

    An output that is absent is no reason when DVC caches it (a fresh clone has no cache), but is one
    when git holds it (`committed`): then it was deleted.
    """
    reasons = []
    for stage, entries in status.items():
        for entry in entries:
            if isinstance(entry, str):
                reasons.append(f"stage '{stage}': {entry} since dvc.lock")
                continue
            for path, state in entry.get("changed deps", {}).items():
                if isinstance(state, dict):
                    reasons += [f"stage '{stage}': param {key} {value} since dvc.lock" for key, value in state.items()]
                elif not (state in _ABSENT and _is_under(path, outputs)):
                    reasons.append(f"stage '{stage}': dependency {path} {state} since dvc.lock")
            for path, state in entry.get("changed outs", {}).items():
                if _is_under(path, committed) and state in _ABSENT:
                    reasons.append(f"stage '{stage}': output {path} {state}: git holds it and dvc.lock records it")
                elif state not in _ABSENT:
                    reasons.append(f"stage '{stage}': output {path} {state}: it is not what dvc.lock records")
            for key in sorted(set(entry) - {"changed deps", "changed outs"}):
                reasons.append(f"stage '{stage}': {key}: {entry[key]}")
    return reasons


def unclaimed_files(tracked: list[str], outputs: set[str], folders: tuple[str, ...] = ("metrics",)) -> list[str]:
    """Files git holds in the outputs' folders that no stage writes (added by hand, or left by a removed stage)."""
    return [
        f"{path}: git holds it, but no stage of dvc.yaml writes it"
        for path in sorted(tracked)
        if path.split("/", 1)[0] in folders and not _is_under(path, outputs)
    ]


def check_lock_is_current(repo: Path) -> list[str]:
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text())
    status = json.loads(dvc(repo, "status", "--json"))
    outputs = pipeline_outputs(pipeline)
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    return stale_entries(status, outputs, pipeline_outputs(pipeline, committed_only=True)) + unclaimed_files(
        [path for path in tracked if path], outputs
    )


# --- a run from scratch against dvc.lock ---------------------------------------------------------------


def output_hashes(lock: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    """{stage: {output path: md5}} of a `dvc.lock` document (None where an output has no hash)."""
    return {
        stage: {out["path"]: out.get("md5") for out in entry.get("outs", [])}
        for stage, entry in lock.get("stages", {}).items()
    }


def lock_differences(
    expected: dict[str, Any], actual: dict[str, Any], names: tuple[str, str] = ("dvc.lock", "this run")
) -> list[str]:
    """Each output whose hash is not the same, present and recorded in both locks, as 'stage: path (...)'."""
    first, second = output_hashes(expected), output_hashes(actual)
    differences = []
    for stage in sorted(set(first) | set(second)):
        if stage not in first or stage not in second:
            differences.append(f"stage '{stage}': only in {names[0] if stage in first else names[1]}")
            continue
        for path in sorted(set(first[stage]) | set(second[stage])):
            hashes = (first[stage].get(path), second[stage].get(path))
            if None in hashes or hashes[0] != hashes[1]:
                shown = [
                    value or ("no hash" if path in side else "no such output")
                    for value, side in zip(hashes, (first[stage], second[stage]), strict=True)
                ]
                differences.append(f"stage '{stage}': {path} ({names[0]} {shown[0]}, {names[1]} {shown[1]})")
    return differences


def file_differences(committed_root: Path, rebuilt_root: Path, outputs: set[str]) -> list[str]:
    """Files of the git-held outputs that differ between two trees: modified, or present in one only."""

    def files(root: Path) -> dict[str, str]:
        found = {}
        for output in sorted(outputs):
            base = root / output
            candidates = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
            for path in candidates:
                found[path.relative_to(root).as_posix()] = hashlib.md5(path.read_bytes()).hexdigest()
        return found

    committed, rebuilt = files(committed_root), files(rebuilt_root)
    differences = []
    for path in sorted(set(committed) | set(rebuilt)):
        if path not in rebuilt:
            differences.append(f"{path}: committed, but the run did not write it")
        elif path not in committed:
            differences.append(f"{path}: the run wrote it, but it is not committed")
        elif committed[path] != rebuilt[path]:
            differences.append(f"{path}: the run wrote other bytes than the committed file")
    return differences


def unrun_stages(output: str, expected: tuple[str, ...] = ALL_STAGES) -> list[str]:
    """The `expected` stages a `dvc repro` output does not say it ran (each must be computed, not restored)."""
    ran = stages_run(output)
    return [f"stage '{stage}' was not run (restored or skipped)" for stage in expected if stage not in ran]


def run_from_scratch(
    source: Path, workspace: Path, machine: Machine = THIS_MACHINE, until: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Copy `source`'s pipeline into `workspace`, run every stage (or only `until` and the stages it depends
    on), return the new dvc.lock and any stage of it not run."""
    make_workspace(workspace, source_root=source)
    output = dvc(workspace, "repro", "--force", "--no-run-cache", *([until] if until else []), machine=machine)
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    expected = tuple(stage for stage in ALL_STAGES if stage in lock.get("stages", {})) if until else ALL_STAGES
    return lock, unrun_stages(output, expected)


# --- the platform that made dvc.lock -------------------------------------------------------------------


def lock_digest(lock_path: Path) -> str:
    return hashlib.sha256(lock_path.read_bytes()).hexdigest()


def current_platform(repo: Path) -> dict[str, Any]:
    return platform_facts(load_section(repo / "params.yaml", ComputeParams.SECTION, ComputeParams))


def record_platform(repo: Path) -> bool:
    """Write the platform record for `repo`'s dvc.lock unless it already describes this dvc.lock."""
    record_path, digest = repo / PLATFORM_RECORD, lock_digest(repo / "dvc.lock")
    if record_path.exists() and json.loads(record_path.read_text()).get("dvc.lock sha256") == digest:
        return False
    record = {"dvc.lock sha256": digest, "platform": current_platform(repo)}
    temporary = record_path.with_name(f".{record_path.name}.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(record_path)
    return True


def explain_platform(repo: Path, this_run: dict[str, Any], checkout_changed: bool = False) -> list[str]:
    """Lines that say on what platform dvc.lock was made and what differs in this run.

    With `checkout_changed` (code or params differ from what dvc.lock was made from), that is the
    likely cause, whatever the platforms say."""
    lines = [f"this run: {describe_compute(this_run)}"]
    record_path = repo / PLATFORM_RECORD
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    if record.get("dvc.lock sha256") != lock_digest(repo / "dvc.lock"):
        unknown = (
            f"{PLATFORM_RECORD} does not describe this dvc.lock (it was written by a plain `dvc repro`, "
            "not `make repro`), so the platform that made it is unknown"
        )
        return [unknown, *lines]
    made_on = record["platform"]
    lines.insert(0, f"dvc.lock was made with: {describe_compute(made_on)}")
    differing = fact_differences(made_on, this_run)
    if checkout_changed:
        return [
            *lines,
            *(f"differs: {line}" for line in differing),
            "the checkout is not what dvc.lock was made from (the `checkout:` lines): run `make repro` "
            "and commit dvc.lock and metrics/",
        ]
    lines += [f"differs: {line}" for line in differing] or [
        "the platform facts recorded are the same: the difference comes from something they do not cover"
    ]
    return lines


def remote_problems(repo: Path) -> tuple[str, list[str]]:
    """What was checked of the default remote, and each output of dvc.lock it lacks.

    Only a shared remote (a URL with a scheme) is checked: this machine's own folder, the default, is
    empty on a fresh clone by design. Unreachable or refusing: one problem saying so, never a pass.
    """
    try:
        remote = configured_remote(repo)
        if remote is None or not remote.shared:
            where = f"{remote.describe()} is a folder of this machine" if remote else "no default remote"
            return f"not checked ({where})", []
        return f"{remote.describe()} checked", missing_from_remote(repo, remote)
    except RemoteError as error:
        return "could not be checked", [str(error).splitlines()[-1]]


def verify(repo: Path, scratch: Path, machine: Machine = THIS_MACHINE, until: str | None = None) -> list[str]:
    """Every reason `repo`'s committed dvc.lock is not what its code makes; empty when it is. With `until` (a
    stage), only that stage and those it depends on are run and compared: a quicker check of, say, training."""
    problems = [f"checkout: {reason}" for reason in check_lock_is_current(repo)]
    checked, missing = remote_problems(repo)
    print(f"verify: remote: {checked}", flush=True)
    problems += [f"remote: {line}" for line in missing]
    committed_lock = yaml.safe_load((repo / "dvc.lock").read_text())
    rebuilt_lock, not_run = run_from_scratch(repo, scratch / "rebuild", machine, until)
    problems += not_run
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text())
    if until:
        ran = set(rebuilt_lock.get("stages", {}))
        committed_lock = {"stages": {k: v for k, v in committed_lock.get("stages", {}).items() if k in ran}}
        pipeline = {"stages": {k: v for k, v in pipeline.get("stages", {}).items() if k in ran}}
    differences = lock_differences(committed_lock, rebuilt_lock)
    differences += file_differences(repo, scratch / "rebuild", pipeline_outputs(pipeline, committed_only=True))
    return problems + differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=PROJECT_ROOT, help="the checkout to verify")
    parser.add_argument(
        "--record-platform",
        action="store_true",
        help="only write dvc.lock.platform.json for this machine if dvc.lock changed (`make repro`)",
    )
    parser.add_argument(
        "--until",
        choices=ALL_STAGES,
        help="run and compare only this stage and the stages it depends on (e.g. train: a quicker check)",
    )
    args = parser.parse_args(argv)
    prepare_tensorflow_environment()  # before platform_facts imports TensorFlow
    filter_native_stderr()  # its import banner lines, as in a stage process (every other line passes)
    repo = args.repo.resolve()
    if args.record_platform:
        if record_platform(repo):
            print(f"verify: wrote {PLATFORM_RECORD}: dvc.lock was made on this machine")
        return 0

    what = f"the stages up to {args.until}" if args.until else "the whole pipeline"
    print(f"verify: running {what} from scratch (empty cache, no run-cache)...", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="verify-") as scratch:
        problems = verify(repo, Path(scratch), until=args.until)
    elapsed = time.perf_counter() - started
    platform_now = current_platform(repo)
    if problems:
        for problem in problems:
            print(f"verify: {problem}", file=sys.stderr)
        checkout_changed = any(problem.startswith("checkout:") for problem in problems)
        for line in explain_platform(repo, platform_now, checkout_changed):
            print(f"verify: {line}", file=sys.stderr)
        print(
            f"verify: FAILED: {len(problems)} difference(s) between dvc.lock and what the committed code makes "
            f"({elapsed:.0f} s).",
            file=sys.stderr,
        )
        return 1
    hashes = output_hashes(yaml.safe_load((repo / "dvc.lock").read_text()))
    checked = stages_up_to(repo, args.until) if args.until else set(ALL_STAGES)
    stages = [stage for stage in ALL_STAGES if stage in hashes and stage in checked]
    outputs = sum(len(hashes[stage]) for stage in stages)
    print(
        f"verify: all {outputs} outputs of the {len(stages)} stages ({', '.join(stages)}) are byte-identical "
        "to dvc.lock "
        f"({elapsed:.0f} s; this run: {describe_compute(platform_now)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
