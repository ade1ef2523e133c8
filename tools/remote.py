"""The project's DVC remote: push and pull with a diagnosis, and the gate that dvc.lock's outputs are on it.

    python -m tools.remote push    # `make push`: outputs and run-cache to the default remote
    python -m tools.remote pull    # `make pull`: every output dvc.lock records, and the run-cache
    python -m tools.remote check   # the gate: fail, naming each, for outputs dvc.lock records that the
                                   # remote lacks (a lock committed without `dvc push`)

All the work is DVC's (`dvc push`, `dvc pull`, `dvc status --cloud`); this module only picks the remote,
and when DVC fails, adds one `error:` line saying which remote, what went wrong and what to do. A remote
whose url is a folder is one machine's own (the project's default, `~/.cache/mnist-dvc/remote`); one with
a scheme (`s3://`, `gs://`, `ssh://`, ...) is shared by a team, and `make verify` checks it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from mnist_dvc.sources.download import redact_credentials as redact
from tools.workspace import PROJECT_ROOT

# `dvc status --cloud` states of an output that the remote does not have: only in the local cache, or nowhere.
_NOT_ON_REMOTE = {"new": "only in this machine's cache", "missing": "neither in this machine's cache nor on it"}
_WARNED_MISSING = re.compile(r"md5: ([0-9a-f]{32}(?:\.dir)?)")


class RemoteError(RuntimeError):
    """No usable remote, or DVC failed against it; the message says which and what to do."""


@dataclasses.dataclass(frozen=True)
class Remote:
    name: str
    url: str
    endpoint: str | None = None

    @property
    def shared(self) -> bool:
        """A remote other machines can reach (a URL with a scheme), not a folder of this machine."""
        return re.match(r"\w+://", self.url) is not None

    def describe(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return redact(f"remote '{self.name}' ({self.url}{where})")


def _dvc(repo: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    dvc = Path(sys.executable).parent / "dvc"
    return subprocess.run([str(dvc), *arguments], cwd=repo, capture_output=True, text=True, check=False)


def configured_remote(repo: Path, name: str | None = None) -> Remote | None:
    """The remote `name`, or the default one (None when there is none), from DVC's merged config."""
    listed = _dvc(repo, "config", "--list")
    if listed.returncode != 0:
        raise RemoteError(f"{repo}: `dvc config --list` failed: {redact(listed.stderr.strip())}")
    config = dict(line.split("=", 1) for line in listed.stdout.splitlines() if "=" in line)
    name = name or config.get("core.remote")
    if not name:
        return None
    if f"remote.{name}.url" not in config:
        known = sorted({key.split(".")[1] for key in config if key.startswith("remote.")})
        raise RemoteError(f"{repo}: no DVC remote named '{name}'. Configured: {', '.join(known) or 'none'}")
    return Remote(name, config[f"remote.{name}.url"], config.get(f"remote.{name}.endpointurl"))


_DIAGNOSES = (
    (
        re.compile(
            r"Could not connect to the endpoint URL|Connection refused|Connect timeout|"
            r"Name or service not known|Temporary failure in name resolution"
        ),
        "cannot reach it: check that the server is up and the remote's url/endpointurl "
        "(`dvc remote modify {name} endpointurl URL`)",
    ),
    (
        re.compile(r"NoSuchBucket|bucket does not exist"),
        "its bucket does not exist: create it, or correct the url (`dvc remote modify {name} url s3://BUCKET/PATH`)",
    ),
    (
        re.compile(r"Unable to locate credentials|NoCredentialsError"),
        "no credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the "
        "environment; never write them into .dvc/config",
    ),
    (
        re.compile(r"SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied|Forbidden|\b403\b"),
        "it refused the credentials: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and that "
        "they may read and write the bucket",
    ),
    (
        re.compile(r"do not exist neither locally nor on remote|Missing cache files"),
        "some outputs are neither here nor on it (listed above): `dvc push` them from a machine that has them, "
        "or rebuild them with `dvc repro`",
    ),
)


def diagnose(remote: Remote, output: str) -> str:
    """What went wrong with `remote`, from DVC's output, and what to do about it."""
    for pattern, advice in _DIAGNOSES:
        if pattern.search(output):
            return f"{remote.describe()}: {advice.format(name=remote.name)}"
    last = next((line for line in reversed(output.splitlines()) if line.startswith("ERROR")), output.strip())
    return f"{remote.describe()}: {redact(last)}"


def missing_from_remote(repo: Path, remote: Remote) -> list[str]:
    """Each output dvc.lock records that `remote` lacks, with where it is instead; [] when all are there."""
    status = _dvc(repo, "status", "--cloud", "--json", "--remote", remote.name)
    if status.returncode != 0:
        raise RemoteError(diagnose(remote, status.stdout + status.stderr))
    states = {
        path: _NOT_ON_REMOTE[state]
        for path, state in json.loads(status.stdout or "{}").items()
        if state in _NOT_ON_REMOTE
    }
    # A folder output whose listing (`<md5>.dir`) is neither in the cache nor on the remote is left out of
    # the JSON by DVC and only named by hash in a warning: map those hashes back to dvc.lock's paths.
    lock_paths = {
        out["md5"]: out["path"] for stage in _lock_stages(repo) for out in stage.get("outs", []) if "md5" in out
    }
    for md5 in _WARNED_MISSING.findall(status.stderr):
        if md5 in lock_paths:
            states.setdefault(lock_paths[md5], _NOT_ON_REMOTE["missing"])
    return [f"{path}: not on {remote.describe()} ({where}): run `dvc push`" for path, where in sorted(states.items())]


def _lock_stages(repo: Path) -> list[dict[str, Any]]:
    lock = repo / "dvc.lock"
    return list((yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values()) if lock.exists() else []


def transfer(repo: Path, direction: str, remote: Remote) -> str:
    """`dvc push` or `dvc pull` of every output and the run-cache; DVC's output, or RemoteError."""
    result = _dvc(repo, direction, "--run-cache", "--remote", remote.name)
    output = redact(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RemoteError(f"{output.rstrip()}\n{diagnose(remote, output)}")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("push", "pull", "check"))
    parser.add_argument("--remote", help="a configured DVC remote (default: the project's default remote)")
    parser.add_argument("--repo", type=Path, default=PROJECT_ROOT)
    parser.add_argument(
        "--if-local",
        action="store_true",
        help="push only if the remote is a folder of this machine (`make repro` does this)",
    )
    args = parser.parse_args(argv)
    try:
        remote = configured_remote(args.repo, args.remote)
        if remote is None:
            raise RemoteError(
                f"{args.repo}: no default DVC remote: add one with "
                '`dvc remote add -d NAME URL` (README: "Sharing through a remote")'
            )
        if args.command == "check":
            missing = missing_from_remote(args.repo, remote)
            for line in missing:
                print(f"remote: {line}", file=sys.stderr)
            if missing:
                print(
                    f"error: {len(missing)} output(s) that dvc.lock records are not on {remote.describe()}",
                    file=sys.stderr,
                )
                return 1
            print(f"remote: every output dvc.lock records is on {remote.describe()}")
            return 0
        if args.if_local and remote.shared:
            print(f"remote: not pushed to the shared {remote.describe()}: `make push` sends it")
            return 0
        print(transfer(args.repo, args.command, remote), end="")
        return 0
    except RemoteError as error:
        lines = str(error).splitlines()
        if len(lines) > 1:
            print("\n".join(lines[:-1]), file=sys.stderr)
        print(f"error: {lines[-1]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
