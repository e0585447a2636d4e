"""``marketlake run`` end to end through the command line, on the embedded defaults."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import exchange_calendars as xc
import pandas as pd
import pytest
from deltalake import DeltaTable

from tests.pipeline.cli import marketlake, sql_json, warehouse_snapshot
from tests.pipeline.raw_payloads import symbols_kept

SYMBOLS = ["AAPL", "MSFT", "GOOGL", "AMZN", "META", "TSLA", "NVDA", "INTC", "JPM", "V"]
START, END = "2024-01-02", "2024-12-31"


def expected_sessions(start: str, end: str) -> int:
    """Sessions in [start, end] counted straight from exchange_calendars."""
    return len(xc.get_calendar("XNYS").sessions_in_range(pd.Timestamp(start), pd.Timestamp(end)))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("full") / "home"
    proc = marketlake("run", "--home", str(home), "--start", START, "--end", END)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return home


def test_run_loads_every_session_of_every_symbol(full_run: Path) -> None:
    rows = sql_json(full_run, "SELECT symbol, count(*) AS n FROM bars_1d GROUP BY 1 ORDER BY 1")
    sessions = expected_sessions(START, END)
    assert {r["symbol"]: r["n"] for r in rows} == {s: sessions for s in sorted(SYMBOLS)}
    for table in ("bars_1d_adjusted", "daily_metrics", "indicators_1d"):
        (row,) = sql_json(full_run, f"SELECT count(*) AS n FROM {table}")
        assert row["n"] == sessions * len(SYMBOLS), table


def test_run_records_every_stage(full_run: Path) -> None:
    rows = sql_json(full_run, "SELECT stage, status, attempt FROM runs ORDER BY started_at")
    assert [r["stage"] for r in rows] == [
        "fetch_history",
        "consume_history",
        "process",
        "load_warehouse",
        "success",
    ]
    assert {r["status"] for r in rows} == {"succeeded"}


def test_lake_holds_each_bar_once(full_run: Path) -> None:
    bars = DeltaTable(str(full_run / "lake" / "curated" / "bars_1d")).to_pyarrow_table()
    keys = set(zip(bars.column("symbol").to_pylist(), bars.column("ts").to_pylist(), strict=True))
    assert len(keys) == bars.num_rows == expected_sessions(START, END) * len(SYMBOLS)
    raw = list((full_run / "lake" / "raw" / "sim").rglob("*.json.gz"))
    assert symbols_kept(raw) == dict.fromkeys(SYMBOLS, 1)  # every symbol's records kept once


def test_adjusted_prices_follow_corporate_actions(full_run: Path) -> None:
    rows = sql_json(
        full_run,
        "SELECT a.symbol, a.ts, b.close AS traded, a.close AS adjusted, a.price_factor "
        "FROM bars_1d_adjusted a JOIN bars_1d b USING (symbol, ts) "
        "WHERE a.ts = (SELECT max(ts) FROM bars_1d)",
    )
    assert len(rows) == len(SYMBOLS)
    for row in rows:  # the latest session is never adjusted
        assert row["adjusted"] == pytest.approx(row["traded"], rel=1e-12)


def test_rerun_changes_nothing(full_run: Path, tmp_path: Path) -> None:
    before = warehouse_snapshot(full_run)
    proc = marketlake("run", "--home", str(full_run), "--start", START, "--end", END)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert warehouse_snapshot(full_run) == before


def test_bad_symbol_is_a_clear_error(tmp_path: Path) -> None:
    proc = marketlake("run", "--home", str(tmp_path / "h"), "--symbols", "AAPL,../etc")
    assert proc.returncode == 2
    assert "invalid symbol '../etc'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sql_formats(full_run: Path) -> None:
    query = "SELECT symbol, count(*) AS n FROM bars_1d WHERE symbol = 'AAPL' GROUP BY 1"
    csv = marketlake("sql", query, "--home", str(full_run), "--format", "csv")
    assert csv.returncode == 0, csv.stderr
    assert csv.stdout.splitlines() == ["symbol,n", f"AAPL,{expected_sessions(START, END)}"]
    table = marketlake("sql", query, "--home", str(full_run))
    assert "AAPL" in table.stdout and str(expected_sessions(START, END)) in table.stdout
    bad = marketlake("sql", "SELECT nope FROM bars_1d", "--home", str(full_run))
    assert bad.returncode == 2 and "query failed" in bad.stderr and "Traceback" not in bad.stderr


def test_doctor_masks_secrets(full_run: Path) -> None:
    proc = marketlake(
        "doctor",
        "--home",
        str(full_run),
        env={"MARKETLAKE_SOURCES__ALPHAVANTAGE__API_KEY": "sekrit-key-123"},
    )
    assert "sekrit-key-123" not in proc.stdout + proc.stderr
    assert "**********" in proc.stdout
    assert proc.returncode == 0, proc.stdout


def test_doctor_checks_the_engine(full_run: Path) -> None:
    ok = marketlake("doctor", "--home", str(full_run))
    assert ok.returncode == 0, ok.stdout
    assert "local: Polars" in ok.stdout
    bad = marketlake("doctor", "--home", str(full_run), env={"MARKETLAKE_ENGINE": "flink"})
    assert bad.returncode == 1
    assert "unknown analytics engine 'flink'" in bad.stdout


def test_missing_sessions_are_reported(tmp_path: Path) -> None:
    csv = tmp_path / "AAPL.csv"
    # 2024-01-04 is a session missing from the file.
    csv.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02,187.15,188.44,183.89,185.64,185.64,82488700\n"
        "2024-01-03,184.22,185.88,183.43,184.25,184.25,58414500\n"
        "2024-01-05,181.99,182.76,180.17,181.18,181.18,62303300\n"
    )
    home = tmp_path / "h"
    proc = marketlake("run", "--home", str(home), "--source", "csv", "--path", str(csv))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = sql_json(home, "SELECT symbol, CAST(ts AS DATE) AS day FROM missing_sessions")
    assert rows == [{"symbol": "AAPL", "day": str(date(2024, 1, 4))}]
