"""Bars and windows checked against an independent computation over the full tick set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa
from stream_reference import (
    BAR_VALUES,
    FIXED_NOW,
    WINDOW_VALUES,
    assert_frames_close,
    last_rows,
    reference_bars,
    reference_windows,
)

from marketlake.sources.live import SimTickSource
from marketlake.streaming import SlidingWindow, StreamConfig, StreamOutput, StreamProcessor

START = datetime(2025, 11, 25, 14, 30, tzinfo=UTC)


def _stream(**options: float) -> list[pa.RecordBatch]:
    source = SimTickSource(
        ["AAPL", "MSFT", "NVDA"],
        start=START,
        count=36_000,
        event_rate_per_s=6.0,
        batch_size=3_000,
        **options,
    )
    return list(source.ticks())


def _check_against_reference(batches: list[pa.RecordBatch]) -> StreamOutput:
    processor = StreamProcessor(StreamConfig(), clock=lambda: FIXED_NOW)
    outputs = [processor.process(batch) for batch in batches]
    outputs.append(processor.flush_all())
    out = StreamOutput.concat(outputs)
    ticks = pa.Table.from_batches(batches)

    bars = last_rows(out.bars_1m, ["symbol", "ts"])
    assert_frames_close(bars, reference_bars(ticks), ["symbol", "ts"], BAR_VALUES)

    windows = last_rows(out.windows, ["symbol", "kind", "window_start"])
    assert windows.get_column("is_final").all()
    expected = reference_windows(ticks)
    assert set(expected.get_column("kind")) == {"sliding_15m_5m", "ma_15m", "ma_1h"}
    assert_frames_close(windows, expected, ["symbol", "kind", "window_start"], WINDOW_VALUES)
    return out


def test_on_time_stream_matches_full_data_computation() -> None:
    batches = _stream()
    out = _check_against_reference(batches)
    assert out.late.num_rows == 0
    finals = pl.from_arrow(out.windows).filter(pl.col("is_final"))
    # without late data every final row is emitted exactly once
    assert finals.height == finals.unique(["symbol", "kind", "window_start"]).height
    assert pl.from_arrow(out.windows).filter(~pl.col("is_final")).height > 0  # provisional


def test_out_of_order_and_late_ticks_are_corrected() -> None:
    batches = _stream(out_of_order_fraction=0.05, late_fraction=0.02, late_by_s=90.0)
    out = _check_against_reference(batches)
    late = pl.from_arrow(out.late)
    assert late.height > 100
    assert set(late.get_column("reason")) == {"behind_watermark"}
    # late: event time before the symbol's largest event time in earlier batches minus 5 s
    ticks = pl.concat(pl.from_arrow(b).with_columns(batch=pl.lit(i)) for i, b in enumerate(batches))
    seen = (
        ticks.group_by("symbol", "batch")
        .agg(top=pl.col("ts").max())
        .sort("batch")
        .with_columns(mark=pl.col("top").cum_max().shift(1).over("symbol") - timedelta(seconds=5))
    )
    expected = (
        ticks.join(seen.select("symbol", "batch", "mark"), on=["symbol", "batch"])
        .filter(pl.col("ts") < pl.col("mark"))
        .sort("symbol", "seq")
    )
    assert (
        late.sort("symbol", "seq")
        .select("symbol", "seq", "ts", "price")
        .equals(expected.select("symbol", "seq", "ts", "price"))
    )
    finals = pl.from_arrow(out.windows).filter(pl.col("is_final"))
    corrected = finals.group_by("symbol", "kind", "window_start").len().filter(pl.col("len") > 1)
    assert corrected.height > 0  # final rows were re-emitted with corrected values
    bars = pl.from_arrow(out.bars_1m)
    assert bars.height > bars.unique(["symbol", "ts"]).height


def test_tumbling_window_and_no_provisional_rows(make_ticks) -> None:
    five = timedelta(minutes=5)
    config = StreamConfig(
        sliding=(SlidingWindow(period=five, every=five),), ma_horizons=(), emit_provisional=False
    )
    ticks = make_ticks(
        [
            (
                "AAPL",
                datetime(2025, 11, 25, 14, 30 + m // 2, 30 * (m % 2), tzinfo=UTC),
                100.0 + m,
                10.0,
            )
            for m in range(20)
        ]
    )
    processor = StreamProcessor(config, clock=lambda: FIXED_NOW)
    out = StreamOutput.concat([processor.process(ticks), processor.flush_all()])
    windows = pl.from_arrow(out.windows)
    assert windows.get_column("is_final").all()
    assert windows.get_column("kind").unique().to_list() == ["sliding_5m_5m"]
    expected = reference_windows(ticks, period="5m", every="5m", horizons=())
    assert_frames_close(
        last_rows(out.windows, ["symbol", "kind", "window_start"]),
        expected,
        ["symbol", "kind", "window_start"],
        WINDOW_VALUES,
    )
