"""Security: loopback by default, a token for anything else, bearer auth, read-only, no
endpoint that reaches the file system."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from marketlake.errors import ConfigError
from marketlake.serve.app import create_app
from marketlake.serve.security import check_bind
from tests.serve.conftest import Served

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def guarded(served: Served) -> TestClient:
    """The application with a token."""
    return TestClient(create_app(served.options(token=TOKEN)))


@pytest.mark.parametrize("path", ["/api/v1/symbols", "/api/v1/bars/AAPL", "/metrics"])
def test_data_needs_the_bearer_token(guarded: TestClient, path: str) -> None:
    missing = guarded.get(path)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in missing.json()["error"]["message"]
    assert guarded.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get(path, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert guarded.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_pages_without_data_stay_open(guarded: TestClient) -> None:
    for path in ("/", "/healthz", "/openapi.json", "/static/dashboard.js"):
        assert guarded.get(path).status_code == 200, path


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_the_api_is_read_only(client: TestClient, method: str) -> None:
    response = client.request(method, "/api/v1/symbols")
    assert response.status_code == 405
    assert "read-only" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/static/../../../../etc/passwd", 404),
        ("/static/%2e%2e/%2e%2e/pyproject.toml", 404),
        ("/static/..%2f..%2f..%2fsettings%2f__init__.py", 404),
        ("/api/v1/bars/..%2F..%2Fetc%2Fpasswd", 404),
        ("/api/v1/bars/.env", 400),
        ("/api/v1/bars/AAPL%00", 400),
    ],
)
def test_no_path_reaches_the_file_system(client: TestClient, url: str, status: int) -> None:
    response = client.get(url)
    assert response.status_code == status
    assert "root:" not in response.text and "[project]" not in response.text


def test_parameters_never_become_sql(client: TestClient) -> None:
    rows = client.get("/api/v1/stream/windows", params={"kind": "x' OR '1'='1"}).json()["data"]
    assert rows == []
    runs = client.get("/api/v1/runs", params={"run_id": "x' OR '1'='1"}).json()["data"]
    assert runs == []


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_token(host: str) -> None:
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org"])
def test_any_other_host_needs_a_token(host: str) -> None:
    with pytest.raises(ConfigError, match=f"refusing to listen on {host} without a token"):
        check_bind(host, None)
    check_bind(host, TOKEN)


def test_the_command_refuses_a_public_bind_without_token(served: Served) -> None:
    for args, env in (
        (["--host", "0.0.0.0"], {}),
        ([], {"MARKETLAKE_SERVE__HOST": "0.0.0.0"}),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "marketlake", "serve", "--home", str(served.home), *args],
            capture_output=True,
            text=True,
            env={**served.env, **env},
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert "refusing to listen on 0.0.0.0 without a token" in proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_the_command_serves_with_its_token(served: Served) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "marketlake",
            "serve",
            "--home",
            str(served.home),
            "--port",
            str(port),
            "--token",
            TOKEN,
        ],
        env=served.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):  # until it listens (bounded; not a timing assertion)
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1]
                time.sleep(0.1)
        assert httpx.get(f"{base}/api/v1/symbols").status_code == 401
        ok = httpx.get(f"{base}/api/v1/symbols", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json()["data"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
