"""Sharing data, models and experiments through a DVC remote: a real S3 server (moto) on 127.0.0.1.

Every command is the one a user runs (`dvc push`, `dvc pull`, `dvc exp push`, `make push`'s
`python -m tools.remote`), through dvc-s3 with AWS credentials from the environment, on copies of the
small-profile repository.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import pytest

from tests.s3_server import S3Server, SlowProxy, free_port, s3_server
from tools.remote import main as remote_main
from tools.remote import redact
from tools.verify import remote_problems
from tools.workspace import Machine, commit, dvc, run, stages_run

pytestmark = pytest.mark.slow

CACHED_OUTPUTS = (
    "data/raw",
    "data/prepared",
    "models/model.keras",
    "data/predictions/submission.csv",
    "data/predictions/own_digits.csv",
)


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Server]:
    """A new S3 server per test: a failed transfer can leave moto's development server stuck."""
    with s3_server(tmp_path / "s3-server") as server:
        yield server


@pytest.fixture
def shared(small_pipeline: Path, tmp_path: Path, s3: S3Server) -> tuple[Path, str]:
    """A copy of the small-profile repository whose committed default remote is a new, empty S3 bucket."""
    repo = Path(shutil.copytree(small_pipeline, tmp_path / "repo", symlinks=True))
    bucket = s3.new_bucket()
    dvc(repo, "remote", "add", "--default", "storage", f"s3://{bucket}/mnist")
    dvc(repo, "remote", "modify", "storage", "endpointurl", s3.endpoint)
    commit(repo, "the team's S3 remote")
    return repo, bucket


def remote_command(repo: Path, *arguments: str, machine: Machine) -> subprocess.CompletedProcess[str]:
    """`python -m tools.remote ...` (what `make push`, `make pull` and the gate run), in this process, with
    exactly the environment `machine` gives DVC; its exit status and output, not raising."""
    stdout, stderr = io.StringIO(), io.StringIO()
    environment = {**_base_environment(), **dict(machine.environment)}
    with mock.patch.dict(os.environ, environment, clear=True), redirect_stdout(stdout), redirect_stderr(stderr):
        returncode = remote_main([*arguments, "--repo", str(repo)])
    return subprocess.CompletedProcess(arguments, returncode, stdout.getvalue(), stderr.getvalue())


def _base_environment() -> dict[str, str]:
    """This process's environment without any AWS setting of the machine running the tests."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    return {**environment, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def fresh_clone(repo: Path, target: Path) -> Path:
    run(["git", "clone", "-q", str(repo), str(target)], repo.parent)
    return target


def digest(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def git_status(repo: Path) -> str:
    return run(["git", "status", "--porcelain"], repo)


def test_a_fresh_clone_pulls_every_output_and_reruns_nothing(
    shared: tuple[Path, str], s3: S3Server, tmp_path: Path
) -> None:
    repo, bucket = shared
    pushed = remote_command(repo, "push", machine=s3.machine())
    assert pushed.returncode == 0, pushed.stderr
    assert any(key.startswith("mnist/runs/") for key in s3.keys(bucket)), "the run-cache was not pushed"

    clone = fresh_clone(repo, tmp_path / "clone")
    dvc(clone, "pull", machine=s3.machine())
    assert stages_run(dvc(clone, "repro", machine=s3.machine())) == []
    assert git_status(clone) == ""
    for output in CACHED_OUTPUTS:
        assert (clone / output).exists(), output
    assert digest(clone / "models/model.keras") == digest(repo / "models/model.keras")

    # `dvc repro --pull` on an empty cache: every output from the remote, no stage computed.
    second = fresh_clone(repo, tmp_path / "second")
    assert stages_run(dvc(second, "repro", "--pull", machine=s3.machine())) == []
    assert digest(second / "models/model.keras") == digest(repo / "models/model.keras")
    assert git_status(second) == ""


def test_the_gate_names_each_output_missing_from_the_remote_until_it_is_pushed(
    shared: tuple[Path, str], s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = shared
    clone = fresh_clone(repo, tmp_path / "clone")  # what CI sees: the committed lock, an empty cache
    for checkout in (repo, clone):
        gate = remote_command(checkout, "check", machine=s3.machine())
        assert gate.returncode == 1
        named = [line.split(":", 2)[1].strip() for line in gate.stderr.splitlines() if line.startswith("remote:")]
        assert set(CACHED_OUTPUTS) <= set(named), gate.stderr
        assert "run `dvc push`" in gate.stderr
        assert gate.stderr.splitlines()[-1].startswith("error: ")
    # `make verify` runs the same check as part of its checkout step.
    for name, value in s3.machine().environment:
        monkeypatch.setenv(name, value)
    checked, missing = remote_problems(clone)
    assert "storage" in checked and any(line.startswith("models/model.keras: not on") for line in missing)

    assert remote_command(repo, "push", machine=s3.machine()).returncode == 0
    for checkout in (repo, clone):
        gate = remote_command(checkout, "check", machine=s3.machine())
        assert gate.returncode == 0, gate.stderr
        assert "every output dvc.lock records is on remote 'storage'" in gate.stdout
    assert remote_problems(clone)[1] == []


@pytest.mark.parametrize(
    "fault, expected",
    [
        ("unreachable endpoint", "cannot reach it"),
        ("wrong secret key", "it refused the credentials"),
        ("no credentials", "no credentials were found"),
        ("missing bucket", "its bucket does not exist"),
    ],
)
def test_a_bad_remote_gives_a_clear_error_and_loses_nothing(
    shared: tuple[Path, str], s3: S3Server, tmp_path: Path, fault: str, expected: str
) -> None:
    repo, bucket = shared
    clone = fresh_clone(repo, tmp_path / "clone")  # pulls; the repository pushes and is checked
    machine = s3.machine()
    overrides = {
        "unreachable endpoint": ("endpointurl", f"http://127.0.0.1:{free_port()}"),
        "missing bucket": ("url", "s3://no-such-bucket/mnist"),
    }
    if fault in overrides:
        for checkout in (repo, clone):
            dvc(checkout, "remote", "modify", "--local", "storage", *overrides[fault])
    elif fault == "wrong secret key":
        machine = s3.machine(AWS_SECRET_ACCESS_KEY="not-the-secret")
    else:
        machine = s3.machine(AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
    status_before = dvc(repo, "status")

    for checkout, command in ((repo, "push"), (clone, "pull"), (repo, "check"), (clone, "check")):
        result = remote_command(checkout, command, machine=machine)
        assert result.returncode == 1, (command, result.stdout)
        last = result.stderr.splitlines()[-1]
        assert last.startswith("error: ") and "remote 'storage'" in last and expected in last, (command, last)
        assert "Traceback" not in result.stderr and "not-the-secret" not in result.stderr

    # Nothing lost: both checkouts are as they were, and once the remote is right push and pull complete.
    assert git_status(repo) == git_status(clone) == "" and dvc(repo, "status") == status_before
    if fault in overrides:
        for checkout in (repo, clone):
            dvc(checkout, "remote", "modify", "--local", "--unset", "storage", overrides[fault][0])
    assert remote_command(repo, "push", machine=s3.machine()).returncode == 0
    assert remote_command(clone, "pull", machine=s3.machine()).returncode == 0
    assert digest(clone / "models/model.keras") == digest(repo / "models/model.keras")
    assert s3.keys(bucket)


def test_an_object_deleted_from_the_remote_is_named_and_pushed_again(
    shared: tuple[Path, str], s3: S3Server, tmp_path: Path
) -> None:
    repo, bucket = shared
    assert remote_command(repo, "push", machine=s3.machine()).returncode == 0
    model_md5 = digest(repo / "models/model.keras")
    s3.client().delete_object(Bucket=bucket, Key=f"mnist/files/md5/{model_md5[:2]}/{model_md5[2:]}")

    clone = fresh_clone(repo, tmp_path / "clone")
    pulled = remote_command(clone, "pull", machine=s3.machine())
    assert pulled.returncode == 1
    assert "models/model.keras" in pulled.stderr
    assert "some outputs are neither here nor on it" in pulled.stderr.splitlines()[-1]
    assert (clone / "data/prepared/train_images.npy").exists()  # the rest did arrive

    gate = remote_command(repo, "check", machine=s3.machine())
    assert gate.returncode == 1 and "models/model.keras: not on remote 'storage'" in gate.stderr
    assert remote_command(repo, "push", machine=s3.machine()).returncode == 0
    assert remote_command(clone, "pull", machine=s3.machine()).returncode == 0
    assert digest(clone / "models/model.keras") == model_md5
    assert stages_run(dvc(clone, "repro", machine=s3.machine())) == [] and git_status(clone) == ""


def test_a_push_killed_half_way_completes_when_run_again(
    shared: tuple[Path, str], s3: S3Server, tmp_path: Path
) -> None:
    repo, bucket = shared
    proxy = SlowProxy(int(s3.endpoint.rsplit(":", 1)[1]), delay=0.15)
    try:
        dvc(repo, "remote", "modify", "--local", "storage", "endpointurl", f"http://127.0.0.1:{proxy.port}")
        environment = {**_base_environment(), **dict(s3.machine().environment)}
        push = subprocess.Popen(
            [str(Path(sys.executable).parent / "dvc"), "push", "--run-cache", "--jobs", "1"],
            cwd=repo,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not s3.keys(bucket) and time.monotonic() < deadline and push.poll() is None:
            time.sleep(0.05)
        push.send_signal(signal.SIGKILL)
        push.wait()
        assert push.returncode == -signal.SIGKILL, "the push ended before it could be interrupted"
    finally:
        proxy.close()
    dvc(repo, "remote", "modify", "--local", "storage", "endpointurl", s3.endpoint)
    assert remote_command(repo, "check", machine=s3.machine()).returncode == 1  # half-way indeed

    assert git_status(repo) == "" and "up to date" in dvc(repo, "status")
    assert remote_command(repo, "push", machine=s3.machine()).returncode == 0
    assert remote_command(repo, "check", machine=s3.machine()).returncode == 0
    clone = fresh_clone(repo, tmp_path / "clone")
    assert remote_command(clone, "pull", machine=s3.machine()).returncode == 0
    for output in CACHED_OUTPUTS:
        target = clone / output
        assert target.exists() and (target.is_dir() or digest(target) == digest(repo / output)), output


def exp_show(repo: Path, machine: Machine) -> dict[str, dict[str, object]]:
    """Each experiment's name mapped to its test metrics and changed params, from `dvc exp show --json`."""
    shown = json.loads(dvc(repo, "exp", "show", "--json", machine=machine))
    experiments = {}
    for commit_entry in shown:
        for experiment in commit_entry.get("experiments") or []:
            for revision in experiment.get("revs", []):
                data = revision.get("data", {})
                metrics = data.get("metrics", {}).get("metrics/evaluate.json", {}).get("data", {})
                params = data.get("params", {}).get("params.yaml", {}).get("data", {})
                experiments[revision.get("name") or experiment.get("name")] = {
                    "test_accuracy": metrics.get("test", {}).get("accuracy"),
                    "params": params,
                }
    return experiments


def test_experiments_travel_between_clones_through_git_and_the_remote(
    shared: tuple[Path, str], s3: S3Server, tmp_path: Path
) -> None:
    """Two clones each run an experiment and push it; a third pulls both, lists them with their params and
    metrics, applies the one that retrained and gets its model from the remote, rerunning nothing. (The other
    experiment changes an evaluate setting only: two experiments to list, one training.)"""
    repo, _ = shared
    machine = s3.machine()
    assert remote_command(repo, "push", machine=machine).returncode == 0
    origin = tmp_path / "origin.git"
    run(["git", "clone", "-q", "--bare", str(repo), str(origin)], tmp_path)

    experiments = {
        "seed-1": ("train.random_seed=1", ["train", "evaluate", "predict", "export"]),
        "shown-4": ("evaluate.max_misclassified_shown=4", ["evaluate"]),
    }
    models = {}
    for name, (setting, rerun) in experiments.items():
        clone = fresh_clone(origin, tmp_path / name)
        dvc(clone, "pull", machine=machine)
        output = dvc(clone, "exp", "run", "-n", name, "-S", setting, machine=machine)
        assert stages_run(output) == rerun, output
        models[name] = digest(clone / "models/model.keras")
        dvc(clone, "exp", "push", "origin", name, machine=machine)
    assert models["seed-1"] != models["shown-4"] == digest(repo / "models/model.keras")

    third = fresh_clone(origin, tmp_path / "third")
    for name in experiments:
        dvc(third, "exp", "pull", "origin", name, machine=machine)
    shown = exp_show(third, machine)
    assert set(experiments) <= set(shown), shown
    assert shown["seed-1"]["params"]["train"]["random_seed"] == 1
    assert shown["shown-4"]["params"]["evaluate"]["max_misclassified_shown"] == 4
    assert all(0.0 < shown[name]["test_accuracy"] <= 1.0 for name in experiments)

    dvc(third, "exp", "apply", "seed-1", machine=machine)
    dvc(third, "pull", machine=machine)
    assert digest(third / "models/model.keras") == models["seed-1"]
    assert stages_run(dvc(third, "repro", machine=machine)) == []  # restored, not trained


def test_a_queue_of_four_experiments_runs_on_two_workers(shared: tuple[Path, str], s3: S3Server) -> None:
    repo, _ = shared
    machine = s3.machine()
    # One TensorFlow thread per experiment, so that two workers share the two cores instead of fighting
    # (as the README shows it). The small profile already has compute.threads 1, so each experiment only
    # reruns evaluate.
    grid = {f"shown-{count}": count for count in (8, 16, 24, 32)}
    for name, count in grid.items():
        dvc(
            repo,
            "exp",
            "run",
            "--queue",
            "-n",
            name,
            "-S",
            f"evaluate.max_misclassified_shown={count}",
            "-S",
            "compute.threads=1",
            machine=machine,
        )
    dvc(repo, "queue", "start", "-j", "2", machine=machine)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = dvc(repo, "queue", "status", machine=machine)
        if not any(state in status for state in ("Queued", "Running")):
            break
        time.sleep(2)
    else:
        dvc(repo, "queue", "stop", "--kill", machine=machine)
        pytest.fail(f"the queue had not finished after 600 s:\n{status}")
    assert "Failed" not in status, status
    shown = exp_show(repo, machine)
    for name, count in grid.items():
        assert name in shown, (name, status)
        assert shown[name]["params"]["evaluate"]["max_misclassified_shown"] == count
        assert shown[name]["test_accuracy"] is not None


def test_credentials_in_a_url_never_reach_the_output() -> None:
    assert (
        redact("ERROR: https://alice:s3cr3t@storage.example/mnist failed")
        == "ERROR: https://***@storage.example/mnist failed"
    )
    assert redact("s3://bucket/path") == "s3://bucket/path"


def test_without_a_default_remote_push_says_how_to_add_one(small_pipeline: Path, tmp_path: Path) -> None:
    repo = Path(shutil.copytree(small_pipeline, tmp_path / "repo", symlinks=True))
    dvc(repo, "remote", "default", "--unset")
    result = remote_command(repo, "push", machine=Machine())
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("error: ") and "dvc remote add -d NAME URL" in result.stderr
    unknown = remote_command(repo, "check", "--remote", "nowhere", machine=Machine())
    assert unknown.returncode == 1 and "no DVC remote named 'nowhere'. Configured: local" in unknown.stderr


def test_make_repro_pushes_only_to_this_machines_folder(shared: tuple[Path, str], s3: S3Server) -> None:
    repo, bucket = shared
    skipped = remote_command(repo, "push", "--if-local", machine=s3.machine())
    assert skipped.returncode == 0 and "`make push` sends it" in skipped.stdout and not s3.keys(bucket)
    dvc(repo, "remote", "default", "local")
    pushed = remote_command(repo, "push", "--if-local", machine=Machine())
    assert pushed.returncode == 0, pushed.stderr
    assert remote_command(repo, "check", "--remote", "local", machine=Machine()).returncode == 0
