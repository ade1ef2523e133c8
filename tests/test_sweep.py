"""`make sweep` (mnist_dvc/sweep): a grid of DVC experiments on a real local Dask cluster.

Real parts only: a LocalCluster of 2 worker processes on 127.0.0.1, a bare git repository on disk as
the git remote, moto's S3 server as the DVC remote, the small-profile pipeline. The workers clone the
bare repository, take the unchanged stages from the remote's run-cache, and push each experiment back,
outputs first; another clone pulls them all with one command.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from mnist_dvc.errors import ParamsError
from mnist_dvc.sweep.grid import Combination, combinations, default_prefix, parse_option
from mnist_dvc.sweep.supervise import start_supervised
from mnist_dvc.sweep.task import redact
from tests.s3_server import S3Server, s3_server
from tests.web_server import PROJECT_ROOT
from tools.workspace import Machine, commit, dvc, run

# --- the grid -------------------------------------------------------------------------------------------


def test_every_combination_of_the_values_is_one_experiment() -> None:
    grid = combinations(["train.learning_rate=0.003,0.005", "train.random_seed=0,1"], "s")
    assert grid == [
        Combination("s-01", ("train.learning_rate=0.003", "train.random_seed=0")),
        Combination("s-02", ("train.learning_rate=0.003", "train.random_seed=1")),
        Combination("s-03", ("train.learning_rate=0.005", "train.random_seed=0")),
        Combination("s-04", ("train.learning_rate=0.005", "train.random_seed=1")),
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["train.learning_rate"], "expected section.key=value"),
        (["train.seed=1,2"], "section 'train' has no key 'seed'"),
        (["training.epochs=1"], "params.yaml has no section 'training'"),
        (["train.epochs=1,,2"], "expected a value between each comma"),
        (["train.epochs=1", "train.epochs=2"], "expected each key once"),
    ],
)
def test_a_bad_option_is_refused_before_anything_runs(options: list[str], message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        combinations(options, "s")


def test_values_are_left_to_the_stages_and_names_are_stable() -> None:
    assert parse_option("train.epochs=-3, 2") == ("train.epochs", ["-3", "2"])  # judged by the stage, per run
    first = default_prefix("a" * 40, ["train.epochs=1,2", "train.random_seed=0"])
    assert first == default_prefix("a" * 40, ["train.random_seed=0", "train.epochs=1,2"])
    assert first != default_prefix("b" * 40, ["train.epochs=1,2", "train.random_seed=0"])


def test_credentials_never_appear_in_a_task_error() -> None:
    text = "fatal: could not read https://user:pa55@git.example.org/x.git; AWS_SECRET_ACCESS_KEY=abc123"
    assert "pa55" not in redact(text) and "abc123" not in redact(text)


# --- the supervisor -------------------------------------------------------------------------------------


def test_a_supervised_command_and_its_children_die_with_the_process_that_started_it(tmp_path: Path) -> None:
    """A parent starts `sh -c 'sleep 300 & sleep 300'` supervised and is then killed with SIGKILL (as a worker
    is): the supervisor, the shell and both sleeps are gone within seconds."""
    script = (
        "import sys, time; from pathlib import Path\n"
        "from mnist_dvc.sweep.supervise import start_supervised\n"
        "process = start_supervised(['sh', '-c', 'sleep 300 & sleep 300'], Path('.'), "
        "{'PATH': '/usr/bin:/bin'}, Path(sys.argv[1]))\n"
        "print(process.pid, flush=True); time.sleep(300)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "log")], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    supervisor = psutil.Process(int(parent.stdout.readline()))
    deadline = time.monotonic() + 10
    while len(supervisor.children(recursive=True)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    family = [supervisor, *supervisor.children(recursive=True)]
    assert len(family) >= 4, family  # supervisor, sh, two sleeps
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    _gone, alive = psutil.wait_procs(family, timeout=10)
    assert alive == [], alive


def test_a_supervised_command_s_exit_status_and_output_come_back(tmp_path: Path) -> None:
    log = tmp_path / "log"
    process = start_supervised(["sh", "-c", "echo hello; exit 3"], tmp_path, {"PATH": "/usr/bin:/bin"}, log)
    assert process.wait(timeout=30) == 3 and log.read_text() == "hello\n"


# --- sweeps on a real local cluster ------------------------------------------------------------------------


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Server]:
    with s3_server(tmp_path / "s3-server") as server:
        yield server


@pytest.fixture
def team(small_pipeline: Path, tmp_path: Path, s3: S3Server) -> tuple[Path, Path, Machine]:
    """A user's clone whose default DVC remote is a new S3 bucket, with a bare repository as its git remote
    `origin`, everything pushed: (the clone, the bare repository, the environment with the credentials)."""
    repo = Path(shutil.copytree(small_pipeline, tmp_path / "user", symlinks=True))
    bucket = s3.new_bucket()
    dvc(repo, "remote", "add", "--default", "storage", f"s3://{bucket}/mnist")
    dvc(repo, "remote", "modify", "storage", "endpointurl", s3.endpoint)
    commit(repo, "the team's S3 remote")
    origin = tmp_path / "origin.git"
    run(["git", "clone", "-q", "--bare", str(repo), str(origin)], tmp_path)
    run(["git", "remote", "add", "origin", str(origin)], repo)
    run(["git", "fetch", "-q", "origin"], repo)
    return repo, origin, s3.machine()


def sweep_environment(machine: Machine) -> dict[str, str]:
    """This environment with the S3 server's credentials, and the project's interpreter first on PATH."""
    environment = {**os.environ, **dict(machine.environment)}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    return environment


def sweep(repo: Path, machine: Machine, *arguments: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    environment = sweep_environment(machine)
    command = [sys.executable, "-m", "mnist_dvc.sweep.command", *arguments, "--repo", str(repo)]
    return subprocess.run(command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=timeout)


def shown_experiments(repo: Path, machine: Machine) -> set[str]:
    import json

    shown = json.loads(dvc(repo, "exp", "show", "--json", machine=machine))
    return {e["name"] for baseline in shown for e in (baseline.get("experiments") or []) if e.get("name")}


@pytest.mark.slow
def test_a_four_point_sweep_on_two_workers_reaches_another_clone_with_one_pull(
    team: tuple[Path, Path, Machine], tmp_path: Path
) -> None:
    repo, origin, machine = team
    options = ["-S", "evaluate.max_misclassified_shown=4,8", "-S", "evaluate.batch_size=100,200"]
    done = sweep(repo, machine, "run", *options, "--workers", "2", "--name", "grid")
    assert done.returncode == 0, done.stdout + done.stderr
    names = {f"grid-0{index}" for index in range(1, 5)}
    for name in names:  # each a real experiment: only evaluate ran (the rest restored), on a worker
        assert f"sweep: {name} (" in done.stdout and "ran evaluate," not in done.stdout.replace(", ran evaluate", "")
    assert done.stdout.count("ran evaluate\n") == 4, done.stdout
    assert names <= shown_experiments(repo, machine)

    other = tmp_path / "colleague"
    run(["git", "clone", "-q", str(origin), str(other)], tmp_path)
    pulled = sweep(other, machine, "pull", "--name", "grid")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert names <= shown_experiments(other, machine)
    best = sweep(other, machine, "apply", "--name", "grid")
    assert best.returncode == 0 and "applied grid-0" in best.stdout, best.stdout + best.stderr
    removed = sweep(other, machine, "remove", "--name", "grid")
    assert removed.returncode == 0 and "removed 4 experiment(s) from git remote 'origin'" in removed.stdout
    assert not names & set(
        dvc(other, "exp", "list", "--all-commits", "--names-only", "origin", machine=machine).split()
    )


@pytest.mark.slow
def test_a_killed_worker_s_task_runs_again_elsewhere_and_a_bad_value_fails_alone(
    team: tuple[Path, Path, Machine],
) -> None:
    """Two combinations train, two have a value train refuses. While the first training runs, its worker is
    killed: its commands die with it (no orphan), the task reruns on a worker, and each experiment that can
    exist is listed once, with the model a local `dvc exp run` of the same params trains."""
    repo, _origin, machine = team
    environment = sweep_environment(machine)
    command = [
        sys.executable,
        "-m",
        "mnist_dvc.sweep.command",
        "run",
        "-S",
        "train.epochs=1,-1",
        "-S",
        "train.random_seed=1,2",
        "--workers",
        "2",
        "--name",
        "faults",
        "--repo",
        str(repo),
    ]
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    killed_family = _kill_the_worker_of_a_training(process.pid)
    stdout, stderr = process.communicate(timeout=600)
    _gone, alive = psutil.wait_procs(killed_family, timeout=10)
    assert alive == [], f"orphans of the killed worker: {alive}"
    import tempfile

    # The killed attempt's folder was removed by the attempt that ran after it (same machine here).
    left = sorted(path.name for path in Path(tempfile.gettempdir()).glob("mnist-sweep-faults-0*"))
    assert left == [], left
    assert process.returncode == 1, stdout + stderr  # the refused values
    for name in ("faults-03", "faults-04"):  # train.epochs=-1
        assert f"sweep: {name} (train.epochs=-1 " in stderr and "train.epochs must be a positive integer" in stderr
    shown = shown_experiments(repo, machine)
    assert {"faults-01", "faults-02"} <= shown and not {"faults-03", "faults-04"} & shown, shown
    listed = dvc(repo, "exp", "list", "--all-commits", "--names-only", "origin", machine=machine).split()
    assert sorted(name for name in listed if name.startswith("faults")) == ["faults-01", "faults-02"]
    # Same bytes as a local run of the same params: the model md5 in the sweep's table.
    dvc(
        repo,
        "exp",
        "run",
        "-S",
        "train.epochs=1",
        "-S",
        "train.random_seed=1",
        "-S",
        "compute.threads=1",
        machine=machine,
    )
    import hashlib

    local_md5 = hashlib.md5((repo / "models/model.keras").read_bytes()).hexdigest()
    assert "| faults-01 | train.epochs=1 train.random_seed=1 | " in stdout and local_md5 in stdout, stdout


def _kill_the_worker_of_a_training(sweep_pid: int) -> list[psutil.Process]:
    """Wait for a `stages.train` process under the sweep, SIGKILL the Dask worker process it runs under;
    return that worker's descendants at the moment of the kill."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for process in psutil.Process(sweep_pid).children(recursive=True):
            try:
                if "stages.train" not in " ".join(process.cmdline()):
                    continue
                supervisor = next(p for p in process.parents() if "mnist_dvc.sweep.supervise" in " ".join(p.cmdline()))
                worker = supervisor.parent()
            except (psutil.NoSuchProcess, StopIteration):
                continue
            if worker is None:
                continue
            family = worker.children(recursive=True)
            worker.send_signal(signal.SIGKILL)
            return family
        time.sleep(0.1)
    raise AssertionError("no training started under the sweep within 300 s")


def test_the_local_cluster_listens_on_loopback_only() -> None:
    """The scheduler (in this process) and every nanny and worker process: each listening socket on 127.0.0.1."""
    from mnist_dvc.sweep.command import cluster

    with cluster(None, 2) as client:
        workers = client.run(os.getpid)
        assert len(workers) == 2
        processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
        listening = [
            (process.pid, connection.laddr)
            for process in processes
            for connection in process.net_connections(kind="inet")
            if connection.status == psutil.CONN_LISTEN
        ]
    assert {pid for pid, _address in listening} >= set(workers.values()), listening
    assert all(address.ip == "127.0.0.1" for _pid, address in listening), listening


@pytest.mark.slow
def test_ctrl_c_stops_every_task_and_lists_no_experiment(team: tuple[Path, Path, Machine]) -> None:
    """SIGINT (Ctrl-C) while two trainings run: the command exits 130 within seconds, every command it
    started on the workers is gone, and no experiment reached the git remote or this clone."""
    repo, _origin, machine = team
    environment = sweep_environment(machine)
    command = [sys.executable, "-m", "mnist_dvc.sweep.command", "run", "-S", "train.random_seed=3,4"]
    command += ["--workers", "2", "--name", "stopped", "--repo", str(repo)]
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As in a terminal: a test run started in the background of a non-interactive shell (`cmd &`) has
        # SIGINT ignored, which its children inherit, and Python then never turns SIGINT into KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not _trainings_under(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    family = psutil.Process(process.pid).children(recursive=True)
    assert _trainings_under(process.pid), "no training started within 300 s"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stdout + stderr
    assert "interrupted" in stderr
    _gone, alive = psutil.wait_procs(family, timeout=15)
    assert alive == [], alive
    listed = dvc(repo, "exp", "list", "--all-commits", "--names-only", "origin", machine=machine).split()
    assert not [name for name in listed if name.startswith("stopped")], listed
    assert not {name for name in shown_experiments(repo, machine) if name.startswith("stopped")}


def _trainings_under(pid: int) -> list[psutil.Process]:
    found = []
    for process in psutil.Process(pid).children(recursive=True):
        try:
            if "stages.train" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found
