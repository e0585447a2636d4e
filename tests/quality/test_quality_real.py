"""Acceptance: validate_bars on real daily histories (Alpha Vantage, Yahoo), XNYS calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from marketlake.calendar import get_sessions
from marketlake.quality.bars import validate_bars
from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA

NOW = datetime(2024, 1, 2, tzinfo=UTC)
UTC_US = pl.Datetime("us", "UTC")
STAMPS = {"source": pl.lit("real"), "ingested_at": pl.lit(NOW).cast(UTC_US)}


def alphavantage(real_data: Path, symbol: str) -> pl.DataFrame:
    (path,) = (real_data / "daily" / "alphavantage_adjusted").glob(f"{symbol}_daily_*.csv")
    return pl.read_csv(path).with_columns(
        pl.lit(symbol).alias("symbol"),
        pl.col("timestamp").str.to_date().cast(UTC_US).alias("ts"),
        pl.col("volume").cast(pl.Float64),
    )


def as_bars(raw: pl.DataFrame) -> pa.Table:
    frame = raw.select("symbol", "ts", "open", "high", "low", "close", "volume").with_columns(
        **STAMPS
    )
    return frame.to_arrow().cast(BAR_SCHEMA)


def split_actions(raw: pl.DataFrame) -> pa.Table:
    frame = raw.filter(pl.col("split_coefficient") != 1).select(
        "symbol",
        pl.col("ts").alias("ex_date"),
        pl.lit("split").alias("kind"),
        pl.col("split_coefficient").alias("ratio"),
        pl.lit(None, pl.Float64).alias("amount"),
        **STAMPS,
    )
    return frame.to_arrow().cast(CORPORATE_ACTION_SCHEMA)


@pytest.fixture(scope="module")
def raw(real_data: Path) -> pl.DataFrame:
    return pl.concat([alphavantage(real_data, "AAPL"), alphavantage(real_data, "TSLA")])


def jump_days(result) -> set[tuple[str, date]]:
    rows = result.rejects.to_pylist()
    return {(r["symbol"], r["ts"].date()) for r in rows if r["rule"] == "implausible_jump"}


def test_split_days_are_explained_by_their_actions(raw: pl.DataFrame) -> None:
    actions = split_actions(raw)
    assert {(a["symbol"], a["ex_date"].date()) for a in actions.to_pylist()} >= {
        ("AAPL", date(2020, 8, 31)),
        ("TSLA", date(2020, 8, 31)),
    }
    result = validate_bars(as_bars(raw), actions, sessions=get_sessions("XNYS").days, now=NOW)
    assert result.counts["implausible_jump"] == 0
    assert result.rejects.num_rows == 0
    assert result.bars.num_rows == raw.height


def test_without_split_actions_exactly_the_large_split_days_are_flagged(raw: pl.DataFrame) -> None:
    splits = split_actions(raw).to_pylist()
    sessions = get_sessions("XNYS").days
    result = validate_bars(as_bars(raw), CORPORATE_ACTION_SCHEMA.empty_table(), sessions=sessions)
    # A split of ratio r moves the as-traded close by about 1/r - 1: beyond 60 % when r > 2.5
    # (AAPL 7:1 in 2014, AAPL 4:1 and TSLA 5:1 in 2020; AAPL's 2:1 splits stay below).
    large = {(s["symbol"], s["ex_date"].date()) for s in splits if s["ratio"] > 2.5}
    assert jump_days(result) == large
    assert ("AAPL", date(2020, 8, 31)) in large and ("TSLA", date(2020, 8, 31)) in large


def test_spy_missing_sessions_agree_with_the_calendar(real_data: Path) -> None:
    path = real_data / "daily" / "yahoo_csv" / "yahoofinance-SPY-20080101-20180101.csv"
    raw = pl.read_csv(path).select(
        pl.lit("SPY").alias("symbol"),
        pl.col("Date").str.to_date().cast(UTC_US).alias("ts"),
        pl.col("Open").alias("open"),
        pl.col("High").alias("high"),
        pl.col("Low").alias("low"),
        pl.col("Close").alias("close"),
        pl.col("Volume").cast(pl.Float64).alias("volume"),
    )
    calendar = get_sessions("XNYS")
    first, last = raw["ts"].min().date(), raw["ts"].max().date()  # type: ignore[union-attr]
    expected = calendar.session_array(first, last)
    present = raw["ts"].dt.date().to_numpy().astype("datetime64[D]")

    result = validate_bars(
        as_bars(raw), CORPORATE_ACTION_SCHEMA.empty_table(), sessions=calendar.days
    )

    # Every row of the file is a session: nothing is off-calendar and nothing is duplicated.
    assert result.counts["not_a_session"] == 0 and result.counts["duplicate"] == 0
    # The missing report is what the calendar expects minus the good bars, exactly.
    good_days = set(result.bars["ts"].to_numpy().astype("datetime64[D]").tolist())
    missing_days = result.missing["ts"].to_numpy().astype("datetime64[D]").tolist()
    assert set(missing_days) == {d for d in expected.tolist() if d not in good_days}
    assert len(missing_days) == len(expected) - result.bars.num_rows
    # The file has a bar for every session; the only holes are bars rejected by a rule
    # (Yahoo's split-adjusted OHLC has rows with low above open), each with its reason.
    assert len(expected) == len(present)
    rejected_days = {t.date() for t in result.rejects["ts"].to_pylist()}
    assert {d.astype(object) for d in result.missing["ts"].to_numpy().astype("datetime64[D]")} == (
        rejected_days
    )
    assert set(result.missing["symbol"].to_pylist()) <= {"SPY"}


def test_spy_over_the_requested_range(real_data: Path) -> None:
    path = real_data / "daily" / "yahoo_csv" / "yahoofinance-SPY-20080101-20180101.csv"
    raw = pl.read_csv(path).select(
        pl.lit("SPY").alias("symbol"),
        pl.col("Date").str.to_date().cast(UTC_US).alias("ts"),
        pl.col("Open").alias("open"),
        pl.col("High").alias("high"),
        pl.col("Low").alias("low"),
        pl.col("Close").alias("close"),
        pl.col("Volume").cast(pl.Float64).alias("volume"),
    )
    calendar = get_sessions("XNYS")
    # The file is named for 2008-01-01..2018-01-01 but starts on 2007-12-31: that bar is
    # outside the requested range, so the report counts only sessions inside it.
    requested = (date(2008, 1, 1), date(2018, 1, 1))
    result = validate_bars(
        as_bars(raw),
        CORPORATE_ACTION_SCHEMA.empty_table(),
        sessions=calendar.days,
        requested=requested,
    )
    expected = calendar.session_array(*requested)
    inside = [t for t in result.bars["ts"].to_pylist() if requested[0] <= t.date() <= requested[1]]
    assert result.missing.num_rows == len(expected) - len(inside)
