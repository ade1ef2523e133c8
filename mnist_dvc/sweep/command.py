"""`make sweep ARGS="-S train.learning_rate=0.003,0.005 -S train.random_seed=0,1"`: one DVC experiment per
combination, each a task on a Dask cluster, all of them in `dvc exp show` afterwards.

    python -m mnist_dvc.sweep.command run -S KEY=V1,V2 [-S ...] [--workers 2] [--scheduler tcp://HOST:8786]
                                          [--git-remote origin] [--dvc-remote NAME] [--name PREFIX]
    python -m mnist_dvc.sweep.command pull   --name PREFIX                               # in another clone
    python -m mnist_dvc.sweep.command list   --name PREFIX [--sort-by test.accuracy]
    python -m mnist_dvc.sweep.command apply  --name PREFIX [--sort-by test.accuracy]    # the best into the workspace
    python -m mnist_dvc.sweep.command remove --name PREFIX                               # from the remotes and here

Without `--scheduler`, a local cluster of `--workers` worker processes (one thread each) starts on
127.0.0.1, scheduler and workers on loopback only. With it, the same tasks go to that cluster, whose workers
must reach the git remote and the DVC remote (a cluster cannot read this folder), have git, and have this
project's requirements installed (`make install` in the image, or `pip install --require-hashes -r
requirements.txt` and the project). Credentials come from this process's environment (AWS_*, and any
variable DVC's remote config reads) and reach the workers inside the tasks, never on a command line.

Before submitting, the command checks that the commit is on the git remote and pushes this checkout's
outputs and run-cache to the DVC remote (the workers start from them). Afterwards it pulls every finished
experiment (`dvc exp pull`), so `dvc exp show` lists them here. Ctrl-C stops every task (their commands
are killed on the workers) and pushes nothing more: an experiment is listed only once all of it is pushed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask

from mnist_dvc.errors import ParamsError, PipelineError
from mnist_dvc.sweep.grid import Combination, combinations, default_prefix
from mnist_dvc.sweep.task import ExperimentResult, ExperimentSpec, TaskFailed, redact, run_experiment

STOP_EVENT = "mnist-dvc-sweep-stop"
PASSED_VARIABLES = ("AWS_", "DVC_", "GIT_", "AZURE_", "GOOGLE_", "GCS_")


def git(repo: Path, *arguments: str) -> str:
    found = subprocess.run(["git", *arguments], cwd=repo, capture_output=True, text=True, check=False)
    if found.returncode != 0:
        raise PipelineError(redact(f"git {' '.join(arguments)}: {found.stderr.strip() or found.stdout.strip()}"))
    return found.stdout.strip()


def dvc(repo: Path, *arguments: str) -> str:
    command = [str(Path(sys.executable).parent / "dvc"), *arguments]
    found = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)
    if found.returncode != 0:
        raise PipelineError(redact(f"dvc {' '.join(arguments)}: {(found.stderr or found.stdout).strip()[-2000:]}"))
    return found.stdout


def git_remote_url(repo: Path, remote: str) -> str:
    """The URL of the git remote `remote`; a path the workers can read when it is a local one."""
    url = git(repo, "remote", "get-url", remote)
    local = (repo / url) if not os.path.isabs(url) and "://" not in url and ":" not in url else None
    return str(local.resolve()) if local is not None and local.exists() else url


def check_commit_is_shared(repo: Path, remote: str, commit: str) -> None:
    """The workers clone `remote`: the commit must be there (pushed). (`run_sweep` has checked that the checkout is
    clean: what is not committed does not reach them.)"""
    git(repo, "fetch", "--quiet", remote)
    contains = git(repo, "branch", "--remotes", "--contains", commit)
    if not contains:
        raise PipelineError(
            f"git remote {remote!r}: expected commit {commit[:10]} (the workers clone it). Received: a remote "
            f"without it; run `git push {remote}` first"
        )


def worker_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name.startswith(PASSED_VARIABLES)}


@contextmanager
def cluster(scheduler: str | None, workers: int, retries: int = 2) -> Iterator[Any]:
    """A Dask client: of a new local cluster on 127.0.0.1 (processes, one thread each), or of `scheduler`."""
    from distributed import Client, LocalCluster

    # A task whose worker dies is rerun up to `retries` times (Dask's allowed-failures); one that raises (a bad
    # value, a failed push) is reported, never rerun. A cluster of your own keeps its own setting.
    dask.config.set({"distributed.scheduler.allowed-failures": retries})
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    local = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,  # errors only
    )
    try:
        with Client(local) as client:
            yield client
    finally:
        local.close()


def _task(spec: ExperimentSpec) -> ExperimentResult:
    """Runs on a worker: the experiment, stopping when the client sets the sweep's stop event."""
    from distributed import Event

    stop = Event(STOP_EVENT)
    return run_experiment(spec, stop_requested=stop.is_set)


def run_sweep(args: argparse.Namespace, repo: Path) -> int:
    commit = git(repo, "rev-parse", "HEAD")
    prefix = args.name or default_prefix(commit, args.set)
    grid = combinations(args.set, prefix)
    if git(repo, "status", "--porcelain", "--untracked-files=no"):
        raise PipelineError(
            f"{repo}: expected a clean checkout (the workers run the committed code and params). Received: "
            "uncommitted changes; commit them (and push them, with a git remote) first"
        )
    if args.git_remote in git(repo, "remote").split():
        check_commit_is_shared(repo, args.git_remote, commit)
        git_url = git_remote_url(repo, args.git_remote)
    elif args.scheduler:
        raise PipelineError(
            f"git remote {args.git_remote!r}: expected a remote the cluster's workers can clone. Received: none "
            "(only a local cluster can clone this folder)"
        )
    else:  # no git remote: the local workers clone this repository and push their experiments back into it
        git_url = str(repo)
    remote = ["--remote", args.dvc_remote] if args.dvc_remote else []
    print(
        f"sweep: {len(grid)} experiments of commit {commit[:10]} ({prefix}-NN); pushing this checkout's outputs "
        "and run-cache to the DVC remote, which the workers start from",
        flush=True,
    )
    dvc(repo, "push", "--run-cache", *remote)
    environment = worker_environment()
    specs = [
        ExperimentSpec(c.name, c.settings, git_url, commit, args.dvc_remote, environment, args.threads) for c in grid
    ]
    results, failures = submit(specs, args)
    if git_url != str(repo) and results:  # the experiments went to the git remote: bring them here, with outputs
        dvc(repo, "exp", "pull", "--force", args.git_remote, *[result.name for result in results], *remote)
    print_table(results, failures, grid)
    if results:
        print(
            f"\n`dvc exp show` lists them. Sorted: `python -m mnist_dvc.sweep.command list --name {prefix}`; the "
            f"best into the workspace: `... apply --name {prefix}`; gone from the remotes: `... remove --name {prefix}`"
        )
    return 1 if failures else 0


def submit(specs: list[ExperimentSpec], args: argparse.Namespace) -> tuple[list[ExperimentResult], dict[str, str]]:
    """Run every spec as a task (retried `args.retries` times if its worker dies); their results and the errors
    of those that failed, as each finishes."""
    from distributed import Event, as_completed

    results: list[ExperimentResult] = []
    failures: dict[str, str] = {}
    with cluster(args.scheduler, args.workers, args.retries) as client:
        stop = Event(STOP_EVENT, client=client)
        stop.clear()
        futures = {client.submit(_task, spec, key=f"experiment-{spec.name}", pure=False): spec for spec in specs}
        try:
            for future in as_completed(futures):
                spec = futures[future]
                if future.status == "finished":
                    result = future.result()
                    results.append(result)
                    ran = ", ".join(result.stages_run) or "nothing"
                    print(
                        f"sweep: {spec.name} ({' '.join(spec.settings)}): test accuracy {_test_accuracy(result):.2%}, "
                        f"{result.seconds:.0f} s, ran {ran}",
                        flush=True,
                    )
                else:
                    error = future.exception()
                    text = str(error) if isinstance(error, TaskFailed) else f"{type(error).__name__}: {error}"
                    failures[spec.name] = redact(text)
                    print(
                        f"sweep: {spec.name} ({' '.join(spec.settings)}) FAILED: {failures[spec.name]}",
                        file=sys.stderr,
                        flush=True,
                    )
        except KeyboardInterrupt:
            print("sweep: interrupted: stopping every task; nothing more is pushed", file=sys.stderr, flush=True)
            stop.set()
            client.cancel(list(futures), force=True)
            time.sleep(1.0)  # the tasks poll the event every 0.5 s and kill their commands
            raise
    return results, failures


def _test_accuracy(result: ExperimentResult) -> float:
    return float(result.metrics.get("evaluate", {}).get("test", {}).get("accuracy", float("nan")))


def print_table(results: list[ExperimentResult], failures: dict[str, str], grid: list[Combination]) -> None:
    by_name = {result.name: result for result in results}
    print("\n| experiment | settings | test accuracy | model md5 | seconds |\n|---|---|---|---|---|")
    for combination in grid:
        result = by_name.get(combination.name)
        settings = " ".join(combination.settings)
        if result is None:
            print(f"| {combination.name} | {settings} | failed: {failures.get(combination.name, '?')[:80]} | | |")
        else:
            print(
                f"| {combination.name} | {settings} | {_test_accuracy(result):.2%} | {result.model_md5} | "
                f"{result.seconds:.0f} |"
            )


def sweep_experiments(repo: Path, prefix: str, metric: str) -> list[tuple[str, float | None, dict[str, Any]]]:
    """(name, metric value, params) of every experiment named `prefix-NN`, best first (missing values last)."""
    shown = json.loads(dvc(repo, "exp", "show", "--json"))
    found: dict[str, tuple[float | None, dict[str, Any]]] = {}
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            name = experiment.get("name") or ""
            if not name.startswith(prefix + "-"):
                continue
            data = (experiment.get("revs") or [{}])[0].get("data", {})
            metrics = {k: v.get("data", {}) for k, v in (data.get("metrics") or {}).items()}
            params = {k: v.get("data", {}) for k, v in (data.get("params") or {}).items()}
            value: Any = metrics.get("metrics/evaluate.json", {})
            for part in metric.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            found[name] = (float(value) if isinstance(value, int | float) else None, params.get("params.yaml", {}))
    return sorted(
        ((name, *entry) for name, entry in found.items()), key=lambda row: (row[1] is None, -(row[1] or 0.0), row[0])
    )


def list_sweep(args: argparse.Namespace, repo: Path) -> int:
    rows = sweep_experiments(repo, args.name, args.sort_by)
    if not rows:
        print(
            f"sweep: no experiment named {args.name}-NN here (run `dvc exp pull` for those on a remote)",
            file=sys.stderr,
        )
        return 1
    print(f"| experiment | {args.sort_by} |\n|---|---|")
    for name, value, _params in rows:
        print(f"| {name} | {'' if value is None else f'{value:.4f}'} |")
    return 0


def apply_best(args: argparse.Namespace, repo: Path) -> int:
    rows = [row for row in sweep_experiments(repo, args.name, args.sort_by) if row[1] is not None]
    if not rows:
        print(f"sweep: no experiment named {args.name}-NN with {args.sort_by} here", file=sys.stderr)
        return 1
    name, value, _params = rows[0]
    dvc(repo, "exp", "apply", name)
    print(f"sweep: applied {name} ({args.sort_by} {value:.4f}) to the workspace; `dvc pull` gets any output not here")
    return 0


def names_on_git_remote(repo: Path, git_remote: str, prefix: str) -> list[str]:
    listed = dvc(repo, "exp", "list", "--all-commits", "--names-only", git_remote).split()
    return sorted({name for name in listed if name.startswith(prefix + "-")})


def pull_sweep(args: argparse.Namespace, repo: Path) -> int:
    """Every experiment of the sweep from the git remote, with its outputs from the DVC remote."""
    names = names_on_git_remote(repo, args.git_remote, args.name)
    if not names:
        print(f"sweep: no experiment named {args.name}-NN on git remote {args.git_remote!r}", file=sys.stderr)
        return 1
    remote = ["--remote", args.dvc_remote] if args.dvc_remote else []
    dvc(repo, "exp", "pull", "--force", args.git_remote, *names, *remote)
    print(f"sweep: pulled {len(names)} experiment(s): {', '.join(names)}; `dvc exp show` lists them")
    return 0


def remove_sweep(args: argparse.Namespace, repo: Path) -> int:
    names = [name for name, _value, _params in sweep_experiments(repo, args.name, args.sort_by)]
    remotes = git(repo, "remote").split()
    if args.git_remote in remotes:
        on_remote = names_on_git_remote(repo, args.git_remote, args.name)
        if on_remote:
            dvc(repo, "exp", "remove", "--git-remote", args.git_remote, *on_remote)
        print(f"sweep: removed {len(on_remote)} experiment(s) from git remote {args.git_remote!r}")
    if names:
        dvc(repo, "exp", "remove", *names)
    print(
        f"sweep: removed {len(names)} experiment(s) here. Their outputs stay in the DVC remote's storage, shared "
        "with anything else that has the same bytes; `dvc gc --cloud --all-commits` reclaims what no commit uses."
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the grid as DVC experiments on a Dask cluster")
    run.add_argument(
        "-S",
        "--set",
        action="append",
        required=True,
        metavar="SECTION.KEY=V1,V2",
        help="a params key and its values (repeat for more keys: every combination runs)",
    )
    run.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster (default 2)")
    run.add_argument("--threads", type=int, default=1, help="compute.threads of each experiment (default 1)")
    run.add_argument("--scheduler", help="a running Dask scheduler's address (default: start a local cluster)")
    run.add_argument(
        "--retries", type=int, default=2, help="times a task reruns when its worker dies (a failing task never does)"
    )
    for sub in (
        run,
        *(
            commands.add_parser(name, help=text)
            for name, text in (
                ("pull", "bring every experiment of the sweep here from the remotes (in another clone)"),
                ("list", "this sweep's experiments, best first"),
                ("apply", "apply the best experiment of the sweep to the workspace"),
                ("remove", "remove the sweep's experiments here and from the git remote"),
            )
        ),
    ):
        sub.add_argument("--repo", type=Path, default=Path.cwd(), help="the checkout (default: here)")
        sub.add_argument("--git-remote", default="origin", help="the git remote shared with the workers")
        sub.add_argument("--dvc-remote", help="the DVC remote shared with the workers (default: the default one)")
        sub.add_argument("--name", required=sub is not run, help="the experiments' name prefix")
        sub.add_argument("--sort-by", default="test.accuracy", help="a key of metrics/evaluate.json")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    try:
        if args.command == "run":
            if args.workers < 1 or args.threads < 1 or args.retries < 0:
                raise ParamsError("--workers and --threads: expected at least 1, --retries at least 0")
            return run_sweep(args, repo)
        commands_by_name = {"pull": pull_sweep, "list": list_sweep, "apply": apply_best, "remove": remove_sweep}
        return commands_by_name[args.command](args, repo)
    except PipelineError as error:
        print(f"sweep: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
