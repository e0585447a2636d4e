"""1-minute aggregates per (symbol, minute), merged batch by batch.

Ticks are grouped into minute buckets with one vectorised group-by per batch; the aggregates
are merged into the state with the same rules, so the result does not depend on how ticks
were split into batches or in which order they arrived. ``open`` is the price of the tick
with the smallest ``(ts, seq)`` in the minute and ``close`` the one with the largest; a
missing size counts as 0.
"""

from __future__ import annotations

import polars as pl

MINUTE_US = 60_000_000
KEYS = ["symbol", "minute"]

STATE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "minute": pl.Int64(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "pv": pl.Float64(),
    "trades": pl.Int64(),
    "first_ts": pl.Int64(),
    "first_seq": pl.Int64(),
    "last_ts": pl.Int64(),
    "last_seq": pl.Int64(),
}


def empty_state() -> pl.DataFrame:
    """An empty minute-aggregate state."""
    return pl.DataFrame(schema=STATE_SCHEMA)


def aggregate_minutes(ticks: pl.LazyFrame) -> pl.LazyFrame:
    """Minute aggregates of ``ticks`` (columns symbol, t (µs), price, size, seq)."""
    return (
        ticks.with_columns(
            minute=(pl.col("t") // MINUTE_US) * MINUTE_US,
            size=pl.col("size").fill_null(0.0),
        )
        .sort(["t", "seq"])  # group_by keeps this order within each group
        .group_by(KEYS)
        .agg(
            open=pl.col("price").first(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            close=pl.col("price").last(),
            volume=pl.col("size").sum(),
            pv=(pl.col("price") * pl.col("size")).sum(),
            trades=pl.len().cast(pl.Int64),
            first_ts=pl.col("t").first(),
            first_seq=pl.col("seq").first(),
            last_ts=pl.col("t").last(),
            last_seq=pl.col("seq").last(),
        )
        .select(list(STATE_SCHEMA))
    )


def merge_minutes(state: pl.LazyFrame, fresh: pl.LazyFrame) -> pl.LazyFrame:
    """``state`` with the aggregates of ``fresh`` merged into it (same keys combine).

    The state's rows for the keys of ``fresh`` are grouped with ``fresh``'s rows (a new key is a
    group of one); the other state rows are kept as they are.
    """
    keys = fresh.select(KEYS)
    merged = (
        pl.concat([state.join(keys, on=KEYS, how="semi"), fresh])
        .sort(["first_ts", "first_seq"])
        .group_by(KEYS)
        .agg(
            open=pl.col("open").first(),
            high=pl.col("high").max(),
            low=pl.col("low").min(),
            close=pl.col("close").sort_by(["last_ts", "last_seq"]).last(),
            volume=pl.col("volume").sum(),
            pv=pl.col("pv").sum(),
            trades=pl.col("trades").sum(),
            first_ts=pl.col("first_ts").first(),
            first_seq=pl.col("first_seq").first(),
            last_ts=pl.col("last_ts").sort_by(["last_ts", "last_seq"]).last(),
            last_seq=pl.col("last_seq").sort_by(["last_ts", "last_seq"]).last(),
        )
        .select(list(STATE_SCHEMA))
    )
    return pl.concat([state.join(keys, on=KEYS, how="anti"), merged])


def bar_rows(bars: pl.LazyFrame) -> pl.LazyFrame:
    """The ``bars_1m`` output columns of minute aggregates (ts still in µs)."""
    return bars.sort(KEYS).select(
        "symbol",
        pl.col("minute").alias("ts"),
        "open",
        "high",
        "low",
        "close",
        "volume",
        pl.when(pl.col("volume") > 0).then(pl.col("pv") / pl.col("volume")).alias("vwap"),
        "trades",
    )
