"""`make repro`: run the whole pipeline and end with a summary a person reads at a glance.

In order: heal what a killed run left (tools.repair_after_kill); `dvc repro`, with `--pull` only where the
default remote may hold outputs (a shared remote, or this machine's folder once something was pushed to it:
on a new machine it is empty, and pulling from it would only warn about every stage); record the platform
that made dvc.lock (tools.verify); push to this machine's remote folder; and print the summary: test
accuracy and errors, validation accuracy, time taken, the exported files, where the pictures are, and the
command for every metric (`dvc metrics show`).

    .venv/bin/python -m tools.repro
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import yaml

from mnist_dvc.process_setup import start_stage_process
from tools.lineage import stage_dependencies
from tools.remote import Remote, RemoteError, configured_remote, transfer
from tools.repair_after_kill import heal_dvc_lock, heal_rwlock, remove_killed_temporaries
from tools.verify import record_platform
from tools.workspace import PROJECT_ROOT, stages_run


def remote_may_hold_outputs(repo: Path, remote: Remote | None) -> bool:
    """Whether `dvc repro --pull` can find anything: a shared remote may; a folder remote only once it has files."""
    if remote is None:
        return False
    if remote.shared:
        return True
    folder = Path(remote.url).expanduser()
    folder = folder if folder.is_absolute() else repo / ".dvc" / folder
    return folder.is_dir() and any(path.is_file() for path in folder.rglob("*"))


def duration(seconds: float) -> str:
    """'6 min 52 s', or '41 s' under a minute."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def summary_lines(repo: Path, seconds: float, ran: list[str]) -> list[str]:
    """The run's summary from the metrics files the stages wrote (whatever reran)."""
    evaluate = _read_json(repo / "metrics/evaluate.json")["test"]
    train = _read_json(repo / "metrics/train.json")
    export = _read_json(repo / "metrics/export.json")
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))
    outputs = [path for stage in stage_dependencies(pipeline).values() for path in stage["outs"]]
    pictures = [path for path in outputs if path.endswith(".png")]
    exported = ", ".join(f"models/{name}" for name in ("model.onnx", "model.tflite", "model_int8.tflite"))
    return [
        f"Done in {duration(seconds)} ({'ran: ' + ', '.join(ran) if ran else 'every stage was up to date'}).",
        f"  test accuracy   {evaluate['accuracy']:.2%}  ({evaluate['errors']:,} errors in {evaluate['images']:,} "
        "official MNIST test images)",
        validation_line(repo, train),
        f"  exported        {exported} (int8: {export['litert_int8']['test_accuracy']:.2%} on the test images)",
        *textwrap.wrap(
            f"{len(pictures)} PNGs in metrics/: {', '.join(Path(picture).stem for picture in pictures)}",
            width=110,
            initial_indent="  pictures        ",
            subsequent_indent=" " * 18,
        ),
        "  charts          .venv/bin/dvc plots show (interactive, in the browser)",
        "  every metric    .venv/bin/dvc metrics show",
    ]


def validation_line(repo: Path, train: dict[str, Any]) -> str:
    """The run's validation accuracy, or (trained on the validation images too) that of the runs that chose it."""
    if "val_accuracy" in train:
        return (
            f"  validation      {train['val_accuracy']:.2%}  (images held out of training; epoch {train['kept_epoch']} "
            f"of {train['epochs_run']} kept)"
        )
    chosen = _read_json(repo / "bench/recipe_validation.json")
    return (
        f"  validation      none (trained on all {train['training_images']:,} images, {train['epochs_run']} epochs); "
        f"the recipe's runs without it: {chosen['val_accuracy_mean']:.2%}"
    )


def _read_json(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def run_streaming(command: list[str], repo: Path) -> tuple[int, str]:
    """Run `command`, printing its output as it comes; return its exit status and output."""
    # DVC runs each stage's `python` through the shell: this interpreter's, as `make` sets it.
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(
        command, cwd=repo, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    return process.wait(), "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=PROJECT_ROOT)
    args = parser.parse_args(argv)
    start_stage_process()  # recording the platform imports TensorFlow: the stages' quiet start-up
    repo = args.repo.resolve()
    started = time.perf_counter()
    try:
        for healed in filter(None, (heal_rwlock(repo), heal_dvc_lock(repo), remove_killed_temporaries(repo))):
            print(f"repro: {healed}", file=sys.stderr)
        remote = configured_remote(repo)
    except (RuntimeError, RemoteError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    pull = ["--pull"] if remote_may_hold_outputs(repo, remote) else []
    status, output = run_streaming([str(Path(sys.executable).parent / "dvc"), "repro", *pull], repo)
    if status != 0:
        return status
    if record_platform(repo):
        print("repro: wrote dvc.lock.platform.json: dvc.lock was made on this machine")
    if remote is not None and not remote.shared:
        try:
            transfer(repo, "push", remote)
            print(f"repro: outputs and run-cache pushed to {remote.describe()}")
        except RemoteError as error:
            print(f"warning: not pushed: {str(error).splitlines()[-1]}", file=sys.stderr)
    print("\n" + "\n".join(summary_lines(repo, time.perf_counter() - started, stages_run(output))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
