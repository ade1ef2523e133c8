"""`make bench-sweep`: a 4-point sweep on the full data with 1 and with 2 local Dask workers, against
`dvc queue start -j 2`, on this machine (after `make repro`). Prints and writes bench/sweep.md.

Each run starts from the same state: a copy of this pipeline (its own git repository with a bare one as
`origin`, and a folder as its DVC remote holding this checkout's outputs and run-cache), so fetch and
preprocess are restored everywhere and every point trains. Every experiment runs with `compute.threads` 1.
The models' md5s are compared across the three runs and with a plain local `dvc exp run` of one point.

    .venv/bin/python -m bench.sweep [-S train.epochs=3] [--points train.random_seed=1,2 train.learning_rate=...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from mnist_dvc.sweep.grid import combinations
from tools.workspace import commit, dvc, make_workspace, run, set_params

ROOT = Path(__file__).resolve().parents[1]
GRID = ["train.random_seed=1,2", "train.learning_rate=0.003,0.004"]


def prepared_copy(folder: Path, fixed: list[str]) -> Path:
    """A copy of the pipeline with this checkout's cache (so its outputs and run-cache), `fixed` params applied
    and committed, pushed to a folder remote and a bare git `origin`."""
    repo = make_workspace(folder / "repo")
    # The committed lock and the .gitignore files DVC keeps beside its outputs, so that git commits neither.
    for name in ("dvc.lock", "data/.gitignore", "models/.gitignore", "data/predictions/.gitignore"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / ".dvc/cache", repo / ".dvc/cache", dirs_exist_ok=True)
    dvc(repo, "checkout")
    dvc(repo, "remote", "add", "--default", "shared", str(folder / "dvc-remote"))
    for setting in fixed:
        key, value = setting.split("=", 1)
        section, name = key.split(".")
        set_params(repo, {section: {name: yaml.safe_load(value)}})
    commit(repo, "bench: sweep")
    dvc(repo, "push", "--run-cache")
    run(["git", "clone", "-q", "--bare", str(repo), str(folder / "origin.git")], folder)
    run(["git", "remote", "add", "origin", str(folder / "origin.git")], repo)
    run(["git", "fetch", "-q", "origin"], repo)
    return repo


def environment() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def sweep_run(repo: Path, workers: int, name: str) -> tuple[float, dict[str, str]]:
    command = [sys.executable, "-m", "mnist_dvc.sweep.command", "run", *sum((["-S", g] for g in GRID), [])]
    command += ["--workers", str(workers), "--name", name, "--repo", str(repo)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=environment(), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    table = {
        settings: md5
        for settings, md5 in re.findall(r"^\| \S+ \| (.+?) \| [\d.]+% \| ([0-9a-f]{32}) \|", done.stdout, flags=re.M)
    }
    return seconds, table


def queue_run(repo: Path) -> tuple[float, dict[str, str]]:
    points = combinations(GRID, "queue")  # the sweep's own grid: the same points, named queue-NN
    for point in points:
        arguments = sum((["-S", setting] for setting in (*point.settings, "compute.threads=1")), [])
        dvc(repo, "exp", "run", "--queue", "-n", point.name, *arguments)
    started = time.perf_counter()
    dvc(repo, "queue", "start", "-j", "2")
    while True:
        status = dvc(repo, "queue", "status")
        if not any(state in status for state in ("Queued", "Running")):
            break
        time.sleep(5)
    seconds = time.perf_counter() - started
    shown = json.loads(dvc(repo, "exp", "show", "--json"))
    settings = {point.name: " ".join(point.settings) for point in points}
    table = {}
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            name = experiment.get("name") or ""
            if name in settings:
                data = experiment["revs"][0]["data"]
                model = (data.get("outs") or {}).get("models/model.keras") or {}
                table[settings[name]] = str(model.get("hash") or model.get("md5") or "?")
    return seconds, table


def local_md5(repo: Path, point: list[str]) -> str:
    arguments = sum((["-S", setting] for setting in (*point, "compute.threads=1")), [])
    dvc(repo, "exp", "run", *arguments)
    return hashlib.md5((repo / "models/model.keras").read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-S", "--set", action="append", default=[], help="params fixed for every point")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/sweep.md")
    args = parser.parse_args(argv)
    rows, md5_tables = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as scratch:
        for label, workers in (("sweep, 1 Dask worker", 1), ("sweep, 2 Dask workers", 2), ("dvc queue start -j 2", 0)):
            folder = Path(scratch) / label.split(",")[0].replace(" ", "-") / str(workers)
            folder.mkdir(parents=True)
            repo = prepared_copy(folder, args.set)
            seconds, table = sweep_run(repo, workers, f"w{workers}") if workers else queue_run(repo)
            rows.append((label, seconds))
            md5_tables[label] = table
            print(f"{label}: {seconds:.0f} s", flush=True)
        first_point = GRID[0].split(",")[0], GRID[1].split(",")[0]
        local = local_md5(repo, list(first_point))
    baseline = rows[0][1]
    lines = [
        f"Measured by `python -m bench.sweep {' '.join('-S ' + s for s in args.set)}`: 4 points "
        f"({' x '.join(GRID)}), compute.threads 1 each, fetch and preprocess restored from the run-cache.",
        "",
        "| run | wall time | speed-up over 1 worker |",
        "|---|---|---|",
        *[f"| {label} | {seconds:.0f} s | {baseline / seconds:.2f}x |" for label, seconds in rows],
        "",
        "| point | " + " | ".join(md5_tables) + " |",
        "|---|" + "---|" * len(md5_tables),
    ]
    for point in next(iter(md5_tables.values())):
        lines.append(f"| {point} | " + " | ".join(table.get(point, "?")[:12] for table in md5_tables.values()) + " |")
    same = all(table == next(iter(md5_tables.values())) for table in md5_tables.values())
    lines += [
        "",
        f"Same model bytes in all three runs: {'yes' if same else 'NO'}; a local `dvc exp run` of "
        f"{' '.join(first_point)} gives md5 {local[:12]}.",
    ]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
