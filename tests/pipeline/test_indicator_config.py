"""The configured indicator set through whole runs: its columns in the lake and the warehouse,
TA-Lib's values on the adjusted bars, and a rebuild of every symbol when the set changes."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest
import talib

from marketlake.analytics.adjust import apply_spans
from marketlake.analytics.indicator_config import resolve_indicators
from marketlake.analytics.indicator_set import DEFAULT_INDICATORS
from marketlake.analytics.indicators import compute_indicators
from marketlake.catalogue import ADJUSTMENT_FACTORS, BARS_1D, INDICATORS_1D
from marketlake.cli.run import run_pipeline
from marketlake.errors import TerminalError
from marketlake.lake import LakeStorage, LakeTables
from marketlake.lake.snapshots import Snapshot
from marketlake.pipeline.reprocess import reprocess_snapshot
from marketlake.settings import load_settings
from tests.pipeline.cli import marketlake

WIDE_TOML = Path(__file__).parents[2] / "docs" / "indicators-wide.toml"
SPAN = {"start": "2024-01-02", "end": "2024-06-28"}
SPAN_ARGS = ("--start", SPAN["start"], "--end", SPAN["end"])


def run(home: Path, symbols: str) -> dict[str, Any]:
    """A whole run in this process; returns the process stage's recorded detail."""
    report = run_pipeline(home=home, symbols=symbols, quiet=True, **SPAN)
    assert report is not None and report.succeeded, [s.error for s in report.stages]
    return process_detail(home)


def process_detail(home: Path) -> dict[str, Any]:
    rows = warehouse(
        home, "SELECT detail FROM runs WHERE stage = 'process' ORDER BY started_at DESC LIMIT 1"
    )
    detail: dict[str, Any] = json.loads(rows[0][0])
    return detail


def warehouse(home: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def warehouse_columns(home: Path) -> list[str]:
    rows = warehouse(
        home,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'indicators_1d' ORDER BY ordinal_position",
    )
    return [row[0] for row in rows]


def lake_frame(home: Path, dataset: Any) -> pl.DataFrame:
    tables = LakeTables(LakeStorage.from_url((home / "lake").as_uri()))
    frame = pl.from_arrow(tables.read(dataset))
    assert isinstance(frame, pl.DataFrame)
    return frame.sort("symbol", "ts")


def adjusted_frame(home: Path) -> pl.DataFrame:
    """The lake's bars adjusted by the factors the run wrote (as the warehouse view does)."""
    tables = LakeTables(LakeStorage.from_url((home / "lake").as_uri()))
    frame = pl.from_arrow(apply_spans(tables.read(BARS_1D), tables.read(ADJUSTMENT_FACTORS)))
    assert isinstance(frame, pl.DataFrame)
    return frame


def test_a_wide_set_from_the_config_file_runs_and_a_change_rebuilds_every_symbol(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    assert "indicators_rebuilt" not in run(home, "AAPL,MSFT")
    assert warehouse_columns(home) == ["symbol", "ts", *DEFAULT_INDICATORS.columns]

    shutil.copy(WIDE_TOML, home / "marketlake.toml")
    with WIDE_TOML.open("rb") as handle:
        wide = resolve_indicators(tomllib.load(handle)["indicators"])
    proc = marketlake("run", "--home", str(home), "--symbols", "AAPL", *SPAN_ARGS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    detail = process_detail(home)
    assert detail["indicators_rebuilt"] == 2  # MSFT too, though the run was AAPL's
    assert "indicators_1d rebuilt for all 2 symbols" in detail["summary"]

    stored = lake_frame(home, INDICATORS_1D)
    assert stored.columns == ["symbol", "ts", *wide.columns]
    adjusted = adjusted_frame(home)
    assert stored.select("symbol", "ts").equals(adjusted.select("symbol", "ts"))
    assert stored.equals(compute_indicators(adjusted, wide))
    assert stored.get_column("cdl_doji").drop_nulls().is_in([-100.0, 0.0, 100.0]).all()
    for symbol in ("AAPL", "MSFT"):  # TA-Lib on each symbol's adjusted closes, in order
        close = adjusted.filter(pl.col("symbol") == symbol).get_column("close").to_numpy()
        mine = stored.filter(pl.col("symbol") == symbol).get_column("kama_30")
        np.testing.assert_array_equal(mine.fill_null(np.nan).to_numpy(), talib.KAMA(close, 30))

    assert warehouse_columns(home) == ["symbol", "ts", *wide.columns]
    loaded = warehouse(home, "SELECT symbol, count(*), count(sar) FROM indicators_1d GROUP BY 1")
    assert sorted(loaded) == [("AAPL", 124, 123), ("MSFT", 124, 123)]

    again = run(home, "AAPL")
    assert "indicators_rebuilt" not in again and again["symbols_unchanged"] == 1


def test_a_parameter_change_with_the_same_columns_rebuilds(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = home / "marketlake.toml"
    config.write_text('[indicators]\nrsi = {fn = "RSI", timeperiod = 7}\n')
    run(home, "AAPL")
    config.write_text('[indicators]\nrsi = {fn = "RSI", timeperiod = 9}\n')
    assert run(home, "AAPL")["indicators_rebuilt"] == 1
    close = adjusted_frame(home).get_column("close").to_numpy()
    stored = lake_frame(home, INDICATORS_1D).get_column("rsi").fill_null(np.nan).to_numpy()
    np.testing.assert_array_equal(stored, talib.RSI(close, 9))
    (row,) = warehouse(home, "SELECT count(*), count(rsi) FROM indicators_1d")
    assert row == (124, 124 - 9)

    config.write_text('[indicators]\nrsi = {fn = "RSI", timeperiod = 5}\n')
    tables = LakeTables(LakeStorage.from_url((home / "lake").as_uri()))
    with pytest.raises(TerminalError, match="run `marketlake run` once to rebuild it"):
        reprocess_snapshot(tables, Snapshot(version=0), settings=load_settings(home=home))


def test_a_bad_set_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "marketlake.toml").write_text('[indicators]\nrsi = {fn = "RSI", period = 9}\n')
    proc = marketlake("run", "--home", str(home), "--symbols", "AAPL", *SPAN_ARGS)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "error: indicators.rsi: RSI has no parameter period; its parameters: timeperiod, "
        "inputs, outputs"
    ]
    assert not (home / "lake").exists()
