"""A provider that cannot be reached fails the run at once, with one line and one attempt.

A refused port or an unknown host is not throttling: it is not retried, and retries spent by
the HTTP client are not started over by the runner's stage retries.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.pipeline.cli import marketlake, sql_json
from tests.pipeline.test_providers_e2e import API_KEY
from tests.providers.replay import ProviderServer, Reply
from tests.sources.test_http import refused_url

REFUSED = "a local port nothing listens on"
ENV = {"MARKETLAKE_SOURCES__ALPHAVANTAGE__API_KEY": API_KEY, "COLUMNS": "1000"}


def fetch_attempts(home: Path) -> list[dict[str, object]]:
    """The fetch_history attempts recorded in ``runs``, with the error of each."""
    rows = sql_json(home, "SELECT status, attempt, detail FROM runs WHERE stage = 'fetch_history'")
    return [
        {"status": r["status"], "attempt": r["attempt"], "error": json.loads(r["detail"])["error"]}
        for r in rows
    ]


@pytest.mark.parametrize(
    ("source", "base_url", "reason"),
    [
        ("alphavantage", REFUSED, "Connection refused"),
        ("yahoo", REFUSED, "Connection refused"),
        ("yahoo", "http://marketlake-test.invalid", "http://marketlake-test.invalid/"),
    ],
    ids=["alphavantage-refused", "yahoo-refused", "yahoo-unknown-host"],
)
def test_an_unreachable_provider_fails_once_with_one_line(
    tmp_path: Path, source: str, base_url: str, reason: str
) -> None:
    home = tmp_path / "h"
    if base_url == REFUSED:
        base_url = refused_url().removesuffix("/query")
    env = {**ENV, f"MARKETLAKE_SOURCES__{source.upper()}__BASE_URL": base_url}
    proc = marketlake("run", "--home", str(home), "--source", source, "--symbols", "IBM", env=env)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    [attempt] = fetch_attempts(home)
    error = attempt.pop("error")
    assert attempt == {"status": "failed", "attempt": 1}
    assert isinstance(error, str) and "\n" not in error
    assert error.startswith(f"{source}: cannot connect to {base_url}/") and reason in error
    assert error in " ".join(output.split())  # printed, if wrapped to the terminal
    assert "Traceback" not in output and API_KEY not in output


def test_http_retries_are_not_multiplied_by_stage_retries(
    server: ProviderServer, tmp_path: Path
) -> None:
    server.route = lambda seen: Reply(503)
    home = tmp_path / "h"
    env = {**ENV, "MARKETLAKE_SOURCES__ALPHAVANTAGE__BASE_URL": server.url}
    proc = marketlake(
        "run", "--home", str(home), "--source", "alphavantage", "--symbols", "IBM", env=env
    )
    assert proc.returncode != 0
    assert len(server.hits("/query")) == 4  # one call and its 3 retries, not 4 stages of them
    [attempt] = fetch_attempts(home)
    assert attempt["status"] == "failed" and attempt["attempt"] == 1
    assert "answered HTTP 503 (gave up after 4 attempts" in str(attempt["error"])
