"""Incremental ingestion on the sim source, through the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import exchange_calendars as xc
import pandas as pd
import pytest

from tests.pipeline.cli import marketlake, sql_json, warehouse_snapshot
from tests.pipeline.raw_payloads import symbols_kept

SYMBOLS = "AAPL,MSFT,AMZN"


def sessions(start: str, end: str) -> int:
    """Sessions in [start, end] straight from exchange_calendars."""
    return len(xc.get_calendar("XNYS").sessions_in_range(pd.Timestamp(start), pd.Timestamp(end)))


def run(home: Path, *args: str) -> None:
    proc = marketlake("run", "--home", str(home), "--symbols", SYMBOLS, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def stage_rows(home: Path, stage: str) -> list[dict[str, Any]]:
    """The ``runs`` rows of ``stage``, oldest first, with ``detail`` decoded."""
    rows = sql_json(
        home,
        f"SELECT run_id, rows_out, detail FROM runs WHERE stage = '{stage}' ORDER BY started_at",
    )
    return [dict(row, detail=json.loads(row["detail"])) for row in rows]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("incremental") / "home"
    run(home, "--start", "2024-01-02", "--end", "2024-06-30")
    run(home, "--start", "2024-01-02", "--end", "2024-12-31")
    return home


def test_second_run_fetches_only_the_new_sessions(two_runs: Path) -> None:
    first, second = stage_rows(two_runs, "fetch_history")
    assert first["rows_out"] == 3 * sessions("2024-01-02", "2024-06-30")
    assert second["rows_out"] == 3 * sessions("2024-07-01", "2024-12-31")
    assert second["detail"]["symbols_fetched"] == 3
    assert second["detail"]["sessions_requested"] == 3 * sessions("2024-07-01", "2024-12-31")
    raw = list((two_runs / "lake" / "raw" / "sim").rglob("*.json.gz"))
    for span in ("2024-01-02-2024-06-28", "2024-07-01-2024-12-31"):  # each run's own span
        kept = [p for p in raw if p.name.endswith(f"-{span}.json.gz")]
        assert symbols_kept(kept) == dict.fromkeys(SYMBOLS.split(","), 1)
    assert len(raw) == 2  # the simulator's one group of the three symbols, once per run


def test_incremental_runs_equal_one_full_run(two_runs: Path, tmp_path: Path) -> None:
    single = tmp_path / "single"
    run(single, "--start", "2024-01-02", "--end", "2024-12-31")
    assert warehouse_snapshot(two_runs) == warehouse_snapshot(single)
    (row,) = sql_json(two_runs, "SELECT count(*) AS n FROM bars_1d")
    assert row["n"] == 3 * sessions("2024-01-02", "2024-12-31")


def test_symbols_with_nothing_missing_are_not_fetched(two_runs: Path) -> None:
    proc = marketlake(
        "run", "--home", str(two_runs), "--symbols", SYMBOLS + ",NVDA",
        "--start", "2024-01-02", "--end", "2024-12-31",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = stage_rows(two_runs, "fetch_history")[-1]
    assert last["rows_out"] == sessions("2024-01-02", "2024-12-31")
    assert last["detail"]["symbols_fetched"] == 1
    assert last["detail"]["symbols_up_to_date"] == 3
    assert "1 symbols fetched" in last["detail"]["summary"]
    assert "3 up to date" in last["detail"]["summary"]
    raw = list((two_runs / "lake" / "raw" / "sim").rglob("NVDA-*.json.gz"))
    assert [p.name for p in raw] == ["NVDA-2024-01-02-2024-12-31.json.gz"]


def test_backfill_of_an_earlier_range(two_runs: Path) -> None:
    run(two_runs, "--start", "2023-10-02", "--end", "2024-12-31")
    last = stage_rows(two_runs, "fetch_history")[-1]
    assert last["rows_out"] == 3 * sessions("2023-10-02", "2023-12-29")
    rows = sql_json(two_runs, "SELECT symbol, count(*) AS n FROM bars_1d GROUP BY 1 ORDER BY 1")
    total = sessions("2023-10-02", "2024-12-31")
    assert {r["symbol"]: r["n"] for r in rows}["AMZN"] == total


def test_new_split_rebuilds_the_adjusted_history(tmp_path: Path) -> None:
    home = tmp_path / "split"
    before_split = ("--start", "2024-06-03", "--end", "2024-11-29")
    proc = marketlake("run", "--home", str(home), "--symbols", "AMZN", *before_split)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    query = (
        "SELECT CAST(a.ts AS DATE) AS day, a.close AS adjusted, b.close AS traded, i.sma_20 "
        "FROM bars_1d_adjusted a JOIN bars_1d b USING (symbol, ts) "
        "JOIN indicators_1d i USING (symbol, ts) WHERE a.symbol = 'AMZN' ORDER BY a.ts"
    )
    old = {r["day"]: r for r in sql_json(home, query)}

    proc = marketlake(
        "run", "--home", str(home), "--symbols", "AMZN", "--start", "2024-12-02", "--end",
        "2024-12-31",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fetched = stage_rows(home, "fetch_history")[-1]
    assert fetched["rows_out"] == sessions("2024-12-02", "2024-12-31")
    actions = sql_json(
        home,
        "SELECT kind, ratio FROM corporate_actions WHERE symbol = 'AMZN' "
        "AND ex_date >= TIMESTAMPTZ '2024-12-02 00:00:00+00'",
    )
    assert [a["kind"] for a in actions] == ["split"], "the later range must hold one split only"
    ratio = actions[0]["ratio"]
    assert ratio > 1
    new = {r["day"]: r for r in sql_json(home, query)}
    assert set(old) < set(new)
    for day, before in old.items():
        after = new[day]
        assert after["traded"] == before["traded"]  # as traded: never rewritten
        assert after["adjusted"] == pytest.approx(before["adjusted"] / ratio, rel=1e-9)
        if before["sma_20"] is not None:
            assert after["sma_20"] == pytest.approx(before["sma_20"] / ratio, rel=1e-9)
