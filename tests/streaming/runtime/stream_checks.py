"""Helpers of the stream pipeline tests: the sim ticks the CLI produces, lake and warehouse
reads, and comparisons with the independent reference."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from marketlake.lake.storage import LakeStorage
from marketlake.lake.tables import LakeTables
from marketlake.sources.live import SimTickSource
from streaming.stream_reference import (
    BAR_VALUES,
    WINDOW_VALUES,
    assert_frames_close,
    reference_bars,
    reference_windows,
)

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)  # a Monday session open (09:30 New York)
SYMBOLS = ("AAPL", "MSFT", "JPM")
SIM_ARGS = ("--symbols", ",".join(SYMBOLS), "--start", "2024-03-04T14:30:00", "--seed", "7")


def sim_ticks(count: int, event_rate: float, **extra: Any) -> pa.Table:
    """The ticks the CLI's sim source produces for SIM_ARGS."""
    source = SimTickSource(
        SYMBOLS, seed=7, start=START, count=count, event_rate_per_s=event_rate, **extra
    )
    return pa.Table.from_batches(list(source.ticks()))


def lake(home: Path) -> LakeTables:
    return LakeTables(LakeStorage.from_url((home / "lake").resolve().as_uri()))


def tick_keys(table: pa.Table) -> list[tuple[Any, ...]]:
    """The (symbol, ts, seq) of every row, sorted (duplicates kept)."""
    rows = table.select(["symbol", "ts", "seq"]).to_pylist()
    return sorted((r["symbol"], r["ts"], r["seq"]) for r in rows)


def warehouse_frame(home: Path, table: str) -> pl.DataFrame:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        arrow = con.sql(f"SELECT * FROM {table}").arrow()
    finally:
        con.close()
    frame = pl.from_arrow(arrow.read_all() if hasattr(arrow, "read_all") else arrow)
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))


def check_outputs(bars: pl.DataFrame, windows: pl.DataFrame, ticks: pa.Table) -> None:
    """Bars and final windows equal the reference computed from ``ticks``."""
    assert_frames_close(
        bars.sort("symbol", "ts"), reference_bars(ticks), ["symbol", "ts"], BAR_VALUES
    )
    assert windows.get_column("is_final").all()
    assert_frames_close(
        windows,
        reference_windows(ticks),
        ["symbol", "kind", "window_start"],
        WINDOW_VALUES,
    )


def frame(table: pa.Table) -> pl.DataFrame:
    result = pl.from_arrow(table)
    assert isinstance(result, pl.DataFrame)
    return result
