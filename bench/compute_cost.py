"""What portable compute costs: the train stage with `compute.*` as committed and with the CPU's own best.

Runs the real train stage (default params otherwise) on the prepared arrays of a `dvc repro`, once per
setting, one after the other in this process's machine, and prints each one's training seconds, the
kernels and threads it ran with, and whether the two models are the same bytes.

    .venv/bin/python -m bench.compute_cost                    # after `make repro` (needs data/prepared)
    .venv/bin/python -m bench.compute_cost --settings native  # one setting
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tools.workspace import PROJECT_ROOT

SETTINGS = {
    "portable": {},  # params.yaml as committed
    "native": {"portable_kernels": False, "threads": 0},
}


def train_with(setting: str, prepared: Path, scratch: Path) -> tuple[float, float, str, str]:
    """(wall seconds of the stage, seconds of training it logged, its compute line, model md5)."""
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["compute"].update(SETTINGS[setting])
    params_path = scratch / f"{setting}.yaml"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    out = scratch / setting
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stages.train",
            "--params",
            str(params_path),
            "--prepared-dir",
            str(prepared),
            "--model-out",
            str(out / "model.keras"),
            "--log-dir",
            str(out / "training"),
            "--summary-out",
            str(out / "train.json"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"train ({setting}) failed:\n{result.stderr}")
    trained_match = re.search(r"trained in ([\d.]+)s", result.stderr)
    compute_match = re.search(r"compute: (.*)", result.stderr)
    if trained_match is None or compute_match is None:
        raise SystemExit(f"train ({setting}) did not log its time and compute settings:\n{result.stderr}")
    trained, compute = float(trained_match.group(1)), compute_match.group(1)
    return wall, trained, compute, hashlib.md5((out / "model.keras").read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared-dir", type=Path, default=PROJECT_ROOT / "data/prepared")
    parser.add_argument("--settings", nargs="+", choices=sorted(SETTINGS), default=list(SETTINGS))
    args = parser.parse_args(argv)
    if not (args.prepared_dir / "train_images.npy").exists():
        print(
            f"error: {args.prepared_dir}: expected the prepared arrays. Received: none (run `make repro`)",
            file=sys.stderr,
        )
        return 1
    print("| setting | kernels and threads | train stage (s) | training (s) | model md5 |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="compute-cost-") as scratch:
        for setting in args.settings:
            wall, trained, compute, digest = train_with(setting, args.prepared_dir, Path(scratch))
            print(f"| {setting} | {compute} | {wall:.0f} | {trained:.0f} | {digest} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
