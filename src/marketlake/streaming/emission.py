"""Which rows a batch emits, computed from the minute state and the watermark moves.

``marks`` holds, per symbol touched by the batch or flush, its watermark before (``w0``) and
after (``w1``) it; ``touched`` the (symbol, minute) keys the batch's ticks fell into. All
timestamps are µs integers until :func:`to_table`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl
import pyarrow as pa

from marketlake.schemas import ALERT_SCHEMA, BARS_1M_SCHEMA, WINDOW_SCHEMA
from marketlake.streaming.alerts import detect_alerts
from marketlake.streaming.bars import KEYS, MINUTE_US, bar_rows
from marketlake.streaming.config import StreamConfig, ma_kind, to_us
from marketlake.streaming.frames import collect, collect_all
from marketlake.streaming.window_rows import provisional_rows, sliding_requests
from marketlake.streaming.windows import (
    REQUEST_KEYS,
    aggregate_windows,
    following_bars,
    sliding_candidates,
    trailing_requests,
)

_UTC_TS = pl.Datetime("us", "UTC")
_STAMPS = ("window_start", "window_end")
_END = pl.col("minute") + MINUTE_US
SMALL_TOUCHED = 64  # touched minutes up to which provisional windows are computed in Python


@dataclass
class Emission:
    """The Arrow outputs of one emission and the minute state left after eviction."""

    bars_1m: pa.Table
    windows: pa.Table
    alerts: pa.Table
    state: pl.DataFrame


def to_table(frame: pl.LazyFrame, schema: pa.Schema, stamps: tuple[str, ...]) -> pa.Table:
    """``frame`` (µs integers in ``stamps``) as an Arrow table with ``schema``."""
    return as_table(collect(shape(frame, schema, stamps)), schema)


def as_table(frame: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    """A frame already shaped by :func:`shape` as an Arrow table with ``schema``."""
    return frame.to_arrow().cast(schema)


def shape(frame: pl.LazyFrame, schema: pa.Schema, stamps: tuple[str, ...]) -> pl.LazyFrame:
    """``frame`` with µs integers in ``stamps`` turned into UTC timestamps and the columns of
    ``schema`` selected, ready for :func:`as_table`."""
    return frame.with_columns(pl.col(c).cast(_UTC_TS) for c in stamps).select(schema.names)


def provisional_windows(
    config: StreamConfig, state: pl.LazyFrame, touched: pl.LazyFrame, now: datetime
) -> pl.LazyFrame | None:
    """The not-yet-final sliding windows containing ``touched`` minutes, as a lazy frame shaped
    for :data:`WINDOW_SCHEMA` (None without sliding windows).

    Meant for batches where no watermark crossed a minute boundary and no tick was late, so
    nothing became final or needs correcting. Lazy, so that a caller can collect it together
    with the state update it reads from.
    """
    if not config.sliding:
        return None
    requests = (
        pl.concat([sliding_candidates(touched, spec) for spec in config.sliding])
        .unique(REQUEST_KEYS)
        .with_columns(is_final=pl.lit(False))
    )
    rows = aggregate_windows(requests, state).with_columns(updated_at=pl.lit(now))
    return shape(rows, WINDOW_SCHEMA, _STAMPS)


def emit_provisional(
    config: StreamConfig, state: pl.DataFrame, touched: pl.DataFrame, now: datetime
) -> pa.Table:
    """Not-yet-final sliding windows containing ``touched`` minutes (no watermark crossed a
    minute boundary and no tick was late, so nothing became final or needs correcting).

    A batch that touches a few minutes (a poll at a live rate) gets them from
    :mod:`marketlake.streaming.window_rows`, without Polars' fixed cost per query.
    """
    if config.sliding and touched.height <= SMALL_TOUCHED:
        requests = sliding_requests(config, touched)
        return provisional_rows(requests, state, now) if requests else WINDOW_SCHEMA.empty_table()
    rows = provisional_windows(config, state.lazy(), touched.lazy().select(KEYS), now)
    if rows is None:
        return WINDOW_SCHEMA.empty_table()
    return as_table(collect(rows), WINDOW_SCHEMA)


def emit_changes(
    config: StreamConfig,
    state: pl.DataFrame,
    marks: pl.DataFrame,
    touched: pl.DataFrame,
    now: datetime,
) -> Emission:
    """Bars and windows that became final, corrections of final ones touched by late ticks,
    provisional windows (when configured), alerts, and the state after eviction."""
    bars = state.lazy()
    lazy_marks = marks.lazy()
    lazy_touched = touched.lazy().select(KEYS)
    current = collect(
        bars.join(lazy_marks, on="symbol", how="inner")
        .join(lazy_touched.with_columns(touched=pl.lit(True)), on=KEYS, how="left")
        .with_columns(pl.col("touched").fill_null(False))
    ).lazy()
    final_bars = current.filter((pl.col("w1") >= _END) & ((pl.col("w0") < _END) | "touched"))
    newly_final = current.filter((pl.col("w0") < _END) & (pl.col("w1") >= _END)).select(KEYS)
    settled = current.filter(pl.col("w1") >= _END).select(KEYS)
    requests = [_sliding_requests(config, current, lazy_marks, lazy_touched)]
    for horizon in config.ma_horizons:
        h = to_us(horizon)
        corrected = following_bars(lazy_touched, h).join(settled, on=KEYS, how="semi")
        trailing = pl.concat([newly_final, corrected]).unique(KEYS)
        requests.append(
            trailing_requests(trailing, h, ma_kind(horizon)).with_columns(is_final=pl.lit(True))
        )
    request = collect(pl.concat(requests).unique(REQUEST_KEYS, keep="first"))
    retention = to_us(config.late_retention)
    keep_from = ((pl.col("w1") - retention) // MINUTE_US) * MINUTE_US - to_us(config.longest_span)
    kept = (
        bars.join(lazy_marks.select("symbol", "w1"), on="symbol", how="left")
        .filter(pl.col("w1").is_null() | (pl.col("minute") >= keep_from))
        .drop("w1")
    )
    rows_lazy = aggregate_windows(request.lazy(), bars).with_columns(updated_at=pl.lit(now))
    rows, kept_frame = collect_all([rows_lazy.sort(REQUEST_KEYS), kept])
    alerts = detect_alerts(rows, config.alerted_kinds, config.alert_pct)
    return Emission(
        bars_1m=to_table(bar_rows(final_bars), BARS_1M_SCHEMA, ("ts",)),
        windows=to_table(rows.lazy(), WINDOW_SCHEMA, _STAMPS),
        alerts=to_table(alerts.lazy().sort(["symbol", "kind", "ts"]), ALERT_SCHEMA, ("ts",)),
        state=kept_frame,
    )


def _sliding_requests(
    config: StreamConfig, current: pl.LazyFrame, marks: pl.LazyFrame, touched: pl.LazyFrame
) -> pl.LazyFrame:
    parts = []
    for spec in config.sliding:
        period = to_us(spec.period)
        recent = current.filter(pl.col("minute") + period > pl.col("w0"))
        closing = sliding_candidates(recent, spec).join(marks, on="symbol")
        closing = closing.filter(
            (pl.col("window_end") > pl.col("w0")) & (pl.col("window_end") <= pl.col("w1"))
        )
        hit = sliding_candidates(touched, spec).join(marks, on="symbol")
        parts += [closing, hit]
    candidates = pl.concat(parts).with_columns(is_final=pl.col("window_end") <= pl.col("w1"))
    if not config.emit_provisional:
        candidates = candidates.filter("is_final")
    return candidates.select([*REQUEST_KEYS, "window_end", "is_final"]).unique(REQUEST_KEYS)
