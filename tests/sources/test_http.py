"""The provider HTTP client: what it retries, what it does not, and how it gives up."""

from __future__ import annotations

import socket

import pytest

from marketlake.retry import RetriesSpentError
from marketlake.sources.http import HttpClient, UnreachableError
from tests.providers.replay import ProviderServer, Reply


def refused_url() -> str:
    """A local URL nothing listens on (a port bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/query"


def client(attempts: list[int], secret: str = "") -> HttpClient:
    return HttpClient(
        "alphavantage",
        timeout_s=5.0,
        retries=3,
        secrets=(secret,) if secret else (),
        before_attempt=lambda: attempts.append(1),
        sleep=lambda s: None,
    )


def test_a_refused_connection_fails_at_once_with_the_url_and_no_secret() -> None:
    attempts: list[int] = []
    url = refused_url()
    with pytest.raises(UnreachableError) as info:
        client(attempts, "S3CR3T").get(url, {"function": "X", "apikey": "S3CR3T"})
    assert len(attempts) == 1
    message = str(info.value)
    assert f"alphavantage: cannot connect to {url}: " in message
    assert "Connection refused" in message and "sources.alphavantage.base_url" in message
    assert "S3CR3T" not in message and "\n" not in message


def test_an_unknown_host_fails_at_once() -> None:
    attempts: list[int] = []
    with pytest.raises(UnreachableError, match=r"cannot connect to http://marketlake\.invalid/"):
        client(attempts).get("http://marketlake.invalid/query")
    assert len(attempts) == 1


def test_spent_retries_are_final_for_outer_loops(server: ProviderServer) -> None:
    server.route = lambda seen: Reply(503)
    attempts: list[int] = []
    with pytest.raises(RetriesSpentError, match="gave up after 4 attempts"):
        client(attempts).get(server.url + "/query")
    assert len(attempts) == len(server.requests) == 4
