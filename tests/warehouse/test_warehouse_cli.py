"""``marketlake run`` and ``marketlake sql`` end to end on DuckDB, PostgreSQL and Snowflake.

The command runs in this process (:func:`tests.pipeline.cli.marketlake`); for Snowflake the
``snowflake_url`` fixture patches fakesnow into it, keeping the databases in the test's folder
between commands, as ``fakesnow -d DIR -m marketlake`` would in a process of their own.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.pipeline.cli import marketlake

ARGS = ["--symbols", "AAPL,MSFT,NVDA", "--start", "2024-01-02", "--end", "2024-06-28"]
BARS = "SELECT symbol, ts, open, high, low, close, volume FROM bars_1d ORDER BY symbol, ts"
INDICATORS = "SELECT symbol, ts, sma_20, rsi_14, macd, obv FROM indicators_1d ORDER BY symbol, ts"
RUNS = "SELECT stage, status FROM runs ORDER BY started_at"


@dataclass(frozen=True)
class Target:
    """One warehouse to run the command against: its URL and extra environment variables."""

    url: str
    env: tuple[tuple[str, str], ...] = ()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``marketlake ARGS --warehouse URL`` and return the finished command."""
        return marketlake(*args, "--warehouse", self.url, env=dict(self.env))

    def rows(self, query: str) -> list[dict[str, Any]]:
        """The rows of ``query`` through ``marketlake sql --format json``."""
        proc = self.cli("sql", query, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        rows: list[dict[str, Any]] = json.loads(proc.stdout)
        return rows


TARGETS: dict[str, Callable[[pytest.FixtureRequest, Path], Target]] = {
    "duckdb": lambda _, folder: Target(f"duckdb://{folder}/w.duckdb"),
    "postgresql": lambda request, _: Target(request.getfixturevalue("postgres_url")),
    "snowflake": lambda request, _: Target(
        request.getfixturevalue("snowflake_url"),
        (("PYTHONWARNINGS", "ignore"),),  # fakesnow's own warnings
    ),
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Bars and indicators of one run into DuckDB."""
    folder = tmp_path_factory.mktemp("reference")
    target = TARGETS["duckdb"](None, folder)  # type: ignore[arg-type]
    proc = target.cli("run", "--home", str(folder / "home"), "--quiet", *ARGS)
    assert proc.returncode == 0, proc.stderr
    return {"bars": target.rows(BARS), "indicators": target.rows(INDICATORS)}


@pytest.mark.parametrize("backend", sorted(TARGETS))
def test_run_loads_the_same_rows_into_every_warehouse(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    reference: dict[str, list[dict[str, Any]]],
) -> None:
    target = TARGETS[backend](request, tmp_path)
    for _ in range(2):  # a second run of the same dates changes nothing
        proc = target.cli("run", "--home", str(tmp_path / "home"), "--quiet", *ARGS)
        assert proc.returncode == 0, proc.stderr
    assert target.rows(BARS) == reference["bars"]
    indicators = target.rows(INDICATORS)
    assert indicators == reference["indicators"]
    assert any(row["sma_20"] is None for row in indicators)  # TA-Lib's warm-up is NULL
    assert all(row["ts"].endswith("+00:00") for row in indicators)
    runs = target.rows(RUNS)
    assert {row["status"] for row in runs} == {"succeeded"}
    assert [row["stage"] for row in runs][-5:] == [
        "fetch_history",
        "consume_history",
        "process",
        "load_warehouse",
        "success",
    ]
    (count,) = target.rows("SELECT count(*) AS n, count(DISTINCT symbol) AS s FROM bars_1d")
    assert count == {"n": len(reference["bars"]), "s": 3}


@pytest.mark.parametrize("backend", ["postgresql", "snowflake"])
def test_sql_is_read_only_and_reports_errors_in_one_line(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    target = TARGETS[backend](request, tmp_path)
    proc = target.cli("run", "--home", str(tmp_path / "home"), "--quiet", *ARGS[:2])
    assert proc.returncode == 0, proc.stderr
    before = target.rows("SELECT count(*) AS n FROM bars_1d")
    for statement in ("DELETE FROM bars_1d", "DROP TABLE bars_1d", "SELEC 1"):
        proc = target.cli("sql", statement)
        assert proc.returncode == 2
        assert proc.stderr.startswith("error: query failed: ")
        assert proc.stderr.count("\n") == 1, proc.stderr
    assert target.rows("SELECT count(*) AS n FROM bars_1d") == before
