"""What a worker does for one combination of a sweep: a real DVC experiment, pushed outputs first.

1. Clone the git remote (a URL or a path the worker can reach) into a folder of its own and check out
   the submitting commit.
2. `dvc pull` the commit's outputs and the run-cache from the DVC remote, so that stages whose inputs the
   combination leaves alone (fetch, preprocess) are restored, not recomputed.
3. `dvc exp run -n NAME -S ...`.
4. `dvc push --run-cache` (the experiment's outputs), then `dvc exp push --no-cache` (its git ref): a listed
   experiment always has its data. A task retried after a kill reruns all of it under the same name;
   pushing the same name again replaces the ref, so no experiment is listed twice.

Every command runs under `supervise`, so it dies with the worker. Credentials arrive in `environment` and
are never part of a repr, a log line or an error message (URLs are shown with their user part removed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mnist_dvc.sources.download import redact_credentials
from mnist_dvc.sweep.supervise import start_supervised

MODEL = "models/model.keras"
STOP_POLL_S = 0.5


@dataclasses.dataclass(frozen=True)
class ExperimentSpec:
    name: str
    settings: tuple[str, ...]
    git_url: str
    commit: str
    dvc_remote: str | None  # the remote's name in the repository's DVC config; None: its default
    environment: dict[str, str] = dataclasses.field(repr=False)  # credentials: never shown
    threads: int = 1  # compute.threads of the experiment: a worker's share of the machine


@dataclasses.dataclass(frozen=True)
class ExperimentResult:
    name: str
    settings: tuple[str, ...]
    worker: str
    seconds: float
    stages_run: tuple[str, ...]
    model_md5: str
    metrics: dict[str, Any]


class TaskFailed(RuntimeError):
    """A command of the task failed; the message names it, with the end of its output."""


def redact(text: str) -> str:
    """URLs' user:password parts (as every message of the project masks them) and AWS-style secrets masked."""
    return re.sub(r"(?i)(secret[_a-z]*[=:]\s*)\S+", r"\1***", redact_credentials(text))


def run_experiment(spec: ExperimentSpec, stop_requested: Callable[[], bool] = lambda: False) -> ExperimentResult:
    """Run one combination on this worker; raises TaskFailed naming the step that failed."""
    started = time.perf_counter()
    # A worker killed mid-task cannot remove its folder: the next attempt of the same experiment on this
    # machine does (attempts of one experiment never run at once: Dask retries a task after it is lost).
    for leftover in Path(tempfile.gettempdir()).glob(f"mnist-sweep-{spec.name}-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"mnist-sweep-{spec.name}-"))
    log = scratch / "commands.log"
    environment = {**os.environ, **spec.environment, "PYTHONUNBUFFERED": "1"}
    # git, dvc and the stages' `python -m ...` from the worker's own environment (the project's, on every worker).
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    try:
        repo = scratch / "repo"
        _run(
            ["git", "clone", "--quiet", "--no-checkout", spec.git_url, str(repo)],
            scratch,
            environment,
            log,
            stop_requested,
        )
        _run(["git", "checkout", "--quiet", "--detach", spec.commit], repo, environment, log, stop_requested)
        remote = ["--remote", spec.dvc_remote] if spec.dvc_remote else []
        _run(["dvc", "pull", "--run-cache", *remote], repo, environment, log, stop_requested, allow_failure=True)
        settings = [*spec.settings]
        if not any(setting.startswith("compute.threads=") for setting in settings):
            settings.append(f"compute.threads={spec.threads}")
        run = ["dvc", "exp", "run", "--name", spec.name]
        for setting in settings:
            run += ["--set-param", setting]
        output = _run(run, repo, environment, log, stop_requested)
        _run(["dvc", "push", "--run-cache", *remote], repo, environment, log, stop_requested)
        _run(
            ["dvc", "exp", "push", "--no-cache", "--force", "origin", spec.name], repo, environment, log, stop_requested
        )
        return ExperimentResult(
            name=spec.name,
            settings=spec.settings,
            worker=socket.gethostname(),
            seconds=time.perf_counter() - started,
            stages_run=tuple(re.findall(r"^Running stage '([^']+)'", output, flags=re.MULTILINE)),
            model_md5=hashlib.md5((repo / MODEL).read_bytes()).hexdigest(),
            metrics=_metrics(repo),
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _metrics(repo: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in ("evaluate", "train"):
        path = repo / f"metrics/{name}.json"
        if path.is_file():
            found[name] = json.loads(path.read_text())
    return found


def _run(
    command: list[str],
    cwd: Path,
    environment: dict[str, str],
    log: Path,
    stop_requested: Callable[[], bool],
    allow_failure: bool = False,
) -> str:
    """Run `command` supervised, polling `stop_requested`; return its output (raise TaskFailed on failure)."""
    start = log.stat().st_size if log.exists() else 0
    with log.open("ab") as marker:
        marker.write(f"$ {' '.join(command)}\n".encode())
    process = start_supervised(command, cwd, environment, log)
    while True:
        try:
            status = process.wait(timeout=STOP_POLL_S)
            break
        except subprocess.TimeoutExpired:  # still running
            if stop_requested():
                process.terminate()  # the supervisor kills the command's whole process group
                process.wait()
                raise TaskFailed(f"{' '.join(command[:3])}: stopped (the sweep was interrupted)") from None
    with log.open("rb") as written:
        written.seek(start)
        output = written.read().decode("utf-8", errors="replace")
    if status != 0 and not allow_failure:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise TaskFailed(redact(f"{' '.join(command[:4])} failed (exit status {status}):\n{tail}"))
    return output
