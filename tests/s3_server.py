"""A real S3 endpoint on 127.0.0.1 for the remote tests: moto's server, with signatures and IAM checked.

The server starts with authentication on (after the three unsigned calls that create its one IAM user),
so wrong or missing credentials are refused as AWS refuses them. `SlowProxy` sits in front of it to make
a transfer take long enough to be interrupted half-way.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.workspace import Machine

_REGION = "us-east-1"
# Unsigned calls the server allows before it checks every signature: create user, its policy, its key.
_UNSIGNED_SETUP_CALLS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _isolated_aws_environment(empty_aws_file: Path) -> dict[str, str]:
    """No AWS config or credentials of the machine running the tests may leak in: both files are
    `empty_aws_file`, an empty file in the test's own folder (botocore wants a regular file)."""
    return {
        "AWS_CONFIG_FILE": str(empty_aws_file),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty_aws_file),
        "AWS_DEFAULT_REGION": _REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        # Fail fast: one attempt per request, as the faults the tests inject do not go away.
        "AWS_MAX_ATTEMPTS": "1",
    }


@dataclasses.dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    empty_aws_file: Path

    def client(self, secret_key: str | None = None):  # noqa: ANN201 - a boto3 client
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=_REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
        )

    def new_bucket(self) -> str:
        bucket = f"team-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def machine(self, **overrides: str) -> Machine:
        """The environment of a DVC command that uses this server as AWS, with these credentials."""
        environment = {
            **_isolated_aws_environment(self.empty_aws_file),
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            **overrides,
        }
        return Machine(environment=tuple((name, value) for name, value in environment.items() if value))


def _wait_until_listening(port: int, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}: {log.read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"moto server did not listen on 127.0.0.1:{port} within {timeout} s")


@contextmanager
def s3_server(folder: Path) -> Iterator[S3Server]:
    """moto's S3 server on a free port of 127.0.0.1 with one IAM user allowed s3:*; stopped on exit. It and
    the DVC commands that use it write only under `folder` (the test's own temporary folder)."""
    import boto3

    port = free_port()
    empty_aws_file = folder / "empty-aws-config"
    empty_aws_file.parent.mkdir(parents=True, exist_ok=True)
    empty_aws_file.write_text("")
    environment = {
        **os.environ,
        **_isolated_aws_environment(empty_aws_file),
        "INITIAL_NO_AUTH_ACTION_COUNT": str(_UNSIGNED_SETUP_CALLS),
    }
    # Its log (a line per request) goes to a file: into an unread pipe, it would fill the pipe and then
    # block the server mid-request once a test had made a few hundred requests.
    log = folder / "moto.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_listening(port, process, log)
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client(
            "iam", endpoint_url=endpoint, region_name=_REGION, aws_access_key_id="setup", aws_secret_access_key="setup"
        )
        iam.create_user(UserName="ci")
        iam.put_user_policy(
            UserName="ci",
            PolicyName="buckets",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
            ),
        )
        key = iam.create_access_key(UserName="ci")["AccessKey"]
        yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"], empty_aws_file)
    finally:
        process.kill()
        process.wait()


class SlowProxy:
    """A TCP proxy on 127.0.0.1 that holds each request back by `delay` seconds, so that a transfer of a
    few dozen objects takes long enough to be killed half-way."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port, self.delay = target_port, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, self.delay), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, 0.0), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, delay: float) -> None:
        try:
            while chunk := source.recv(65536):
                time.sleep(delay)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
