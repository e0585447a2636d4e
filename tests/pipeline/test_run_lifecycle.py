"""What one run leaves for the next: nothing of a failed run's messages, no stage left
``running`` by a killed process, and no rewrite when nothing is new."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import exchange_calendars as xc
import pandas as pd
from deltalake import DeltaTable

from tests.pipeline.cli import marketlake, sql_json
from tests.providers.replay import ProviderServer, Reply, Seen

RANGE = ("--start", "2024-01-02", "--end", "2024-06-28")
ANALYTICS = ("adjustment_factors", "daily_metrics", "indicators_1d")
NASDAQ_AAPL = "daily/nasdaq_format/AAPL_2008-11-24_2018-11-23.csv"


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    proc = marketlake(*args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def stage_detail(home: Path, run_id: str, stage: str) -> dict[str, Any]:
    (row,) = sql_json(
        home, f"SELECT detail FROM runs WHERE run_id = '{run_id}' AND stage = '{stage}'"
    )
    detail: dict[str, Any] = json.loads(row["detail"])
    return detail


def last_run_id(home: Path) -> str:
    rows = sql_json(home, "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")
    return str(rows[0]["run_id"])


def versions(home: Path) -> dict[str, int]:
    return {t: DeltaTable(str(home / "lake" / "analytics" / t)).version() for t in ANALYTICS}


# -- a run consumes only its own messages ----------------------------------------------------


def test_messages_of_a_run_that_never_consumed_are_not_merged_by_the_next(home: Path) -> None:
    left = ok("run", "--plan", "--home", str(home), "--symbols", "BRK.B,BTC-USD", *RANGE).strip()
    ok("run", "--home", str(home), "--stage", "fetch_history", "--run-id", left)
    # the planned run stops here, its messages on the bus; an unrelated run comes next
    ok("run", "--home", str(home), "--symbols", "AAPL", *RANGE)
    other = last_run_id(home)
    assert stage_detail(home, other, "consume_history")["other_runs_skipped"] > 0
    lake = DeltaTable(str(home / "lake" / "curated" / "bars_1d")).to_pyarrow_table()
    assert set(lake.column("symbol").to_pylist()) == {"AAPL"}
    rows = sql_json(home, "SELECT DISTINCT symbol FROM bars_1d")
    assert rows == [{"symbol": "AAPL"}]

    # the first run, resumed, fetches again what it never wrote: nothing is lost
    ok("run", "--home", str(home), "--run-id", left)
    rows = sql_json(home, "SELECT symbol, count(*) AS n FROM bars_1d GROUP BY 1 ORDER BY 1")
    assert {r["symbol"] for r in rows} == {"AAPL", "BRK.B", "BTC-USD"}
    assert len({r["n"] for r in rows}) == 1


# -- a killed run's stages are marked abandoned ----------------------------------------------


def test_stage_of_a_killed_run_is_marked_abandoned_by_the_next_run(
    server: ProviderServer, home: Path
) -> None:
    seen: list[Seen] = []

    def route(request: Seen) -> Reply | None:
        seen.append(request)
        return Reply(200, b"{}", delay_s=60)  # holds the run inside fetch_history

    server.route = route
    env = {**os.environ, "MARKETLAKE_SOURCES__YAHOO__BASE_URL": server.url}
    args = ["run", "--home", str(home), "--source", "yahoo", "--symbols", "AAPL", *RANGE]
    proc = subprocess.Popen(
        [sys.executable, "-m", "marketlake", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        while not seen and proc.poll() is None:  # the fetch has begun: its row says running
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert seen, "the run ended before it asked the source"

    ok("run", "--home", str(home), "--symbols", "MSFT", *RANGE)
    rows = sql_json(home, "SELECT run_id, stage, status, detail FROM runs ORDER BY started_at")
    killed = next(r for r in rows if r["stage"] == "fetch_history")
    assert killed["status"] == "abandoned"
    assert "abandoned: the process that ran it" in json.loads(killed["detail"])["error"]
    assert {r["status"] for r in rows if r["run_id"] != killed["run_id"]} == {"succeeded"}
    assert not [r for r in rows if r["status"] in ("running", "retrying")]


# -- a re-run with nothing new does nothing --------------------------------------------------


def test_rerun_with_nothing_new_rewrites_no_analytics(home: Path) -> None:
    ok("run", "--home", str(home), "--symbols", "AAPL,MSFT", *RANGE)
    before = versions(home)
    ok("run", "--home", str(home), "--symbols", "AAPL,MSFT", *RANGE)
    assert versions(home) == before
    detail = stage_detail(home, last_run_id(home), "process")
    assert (detail["symbols_processed"], detail["symbols_unchanged"]) == (0, 2)
    (count,) = sql_json(home, "SELECT count(*) AS n FROM indicators_1d")
    assert count["n"] > 0

    adjusted = "SELECT * FROM bars_1d_adjusted WHERE symbol = 'AAPL' ORDER BY ts"
    aapl = sql_json(home, adjusted)
    ok("run", "--home", str(home), "--symbols", "AAPL,MSFT,TSLA", *RANGE)
    detail = stage_detail(home, last_run_id(home), "process")
    assert (detail["symbols_processed"], detail["symbols_unchanged"]) == (1, 2)
    assert sql_json(home, adjusted) == aapl
    tsla = sql_json(home, "SELECT count(*) AS n FROM daily_metrics WHERE symbol = 'TSLA'")
    assert tsla[0]["n"] > 0


def test_the_adjusted_bars_an_older_version_kept_in_the_lake_are_removed(home: Path) -> None:
    """Adjusted bars are derived at read time now: the lake table an older version wrote
    stopped at that version, so the next run removes it rather than leave it to readers."""
    import pyarrow as pa
    from deltalake import write_deltalake

    ok("run", "--home", str(home), "--symbols", "AAPL", *RANGE)
    retired = home / "lake" / "analytics" / "bars_1d_adjusted"
    write_deltalake(str(retired), pa.table({"symbol": ["AAPL"], "close": [1.0]}))
    out = ok("run", "--home", str(home), "--symbols", "AAPL", *RANGE)
    assert not retired.exists()
    assert "retired lake tables removed: analytics/bars_1d_adjusted" in out
    detail = stage_detail(home, last_run_id(home), "process")
    assert detail["retired_tables_removed"] == ["analytics/bars_1d_adjusted"]
    assert detail["symbols_processed"] == 0  # the factors stand: the view needs nothing else
    bars = sql_json(home, "SELECT count(*) AS n FROM bars_1d")
    assert sql_json(home, "SELECT count(*) AS n FROM bars_1d_adjusted") == bars
    ok("run", "--home", str(home), "--symbols", "AAPL", *RANGE)
    assert "retired_tables_removed" not in stage_detail(home, last_run_id(home), "process")


def test_reimporting_the_same_file_recomputes_nothing(real_data: Path, home: Path) -> None:
    csv = ("--source", "csv", "--path", str(real_data / NASDAQ_AAPL), "--symbols", "AAPL")
    ok("run", "--home", str(home), *csv)
    before = versions(home)
    ok("run", "--home", str(home), *csv)
    assert versions(home) == before
    detail = stage_detail(home, last_run_id(home), "process")
    assert detail["symbols_processed"] == 0


def test_next_run_after_a_reprocess_as_of_brings_the_analytics_back(home: Path) -> None:
    ok(
        "run",
        "--home",
        str(home),
        "--symbols",
        "AAPL",
        "--start",
        "2024-01-02",
        "--end",
        "2024-03-28",
    )
    ok("run", "--home", str(home), "--symbols", "AAPL", *RANGE)
    current = sql_json(home, "SELECT count(*) AS n FROM bars_1d")
    ok("lake", "reprocess", "--home", str(home), "--as-of", "0")
    older = DeltaTable(str(home / "lake" / "analytics" / "daily_metrics")).to_pyarrow_table()
    assert 0 < older.num_rows < current[0]["n"]
    ok("run", "--home", str(home), "--symbols", "AAPL", *RANGE)
    assert stage_detail(home, last_run_id(home), "process")["symbols_processed"] == 1
    assert sql_json(home, "SELECT count(*) AS n FROM bars_1d_adjusted") == current


def test_symbols_written_by_a_run_that_stopped_before_process_are_processed_next(
    home: Path,
) -> None:
    stopped = ok("run", "--plan", "--home", str(home), "--symbols", "AAPL", *RANGE).strip()
    for stage in ("fetch_history", "consume_history"):
        ok("run", "--home", str(home), "--stage", stage, "--run-id", stopped)
    ok("run", "--home", str(home), "--symbols", "AAPL", *RANGE)
    detail = stage_detail(home, last_run_id(home), "process")
    assert detail["symbols_processed"] == 1
    bars = sql_json(home, "SELECT count(*) AS n FROM bars_1d")
    assert sql_json(home, "SELECT count(*) AS n FROM bars_1d_adjusted") == bars


# -- missing sessions span separate backfills ------------------------------------------------


def test_gap_between_two_backfills_is_a_missing_session(real_data: Path, home: Path) -> None:
    csv = ("--source", "csv", "--path", str(real_data / NASDAQ_AAPL), "--symbols", "AAPL")
    ok("run", "--home", str(home), *csv, "--start", "2015-01-02", "--end", "2015-03-31")
    ok("run", "--home", str(home), *csv, "--start", "2016-01-04", "--end", "2016-03-31")
    gap = xc.get_calendar("XNYS").sessions_in_range(
        pd.Timestamp("2015-04-01"), pd.Timestamp("2015-12-31")
    )
    missing = sql_json(
        home, "SELECT CAST(ts AS DATE) AS day FROM missing_sessions WHERE symbol = 'AAPL'"
    )
    assert {r["day"] for r in missing} == {day.date().isoformat() for day in gap}
