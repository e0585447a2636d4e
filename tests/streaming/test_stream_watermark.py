"""Watermarks, late routing, quarantine and the idle close at the session close."""

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

from marketlake.schemas import QUARANTINE_SCHEMA, TICK_SCHEMA
from marketlake.streaming import StreamConfig, StreamOutput, StreamProcessor


def at(hour: int, minute: int, second: int = 0, day: int = 25, month: int = 11) -> datetime:
    return datetime(2025, month, day, hour, minute, second, tzinfo=UTC)


def _bars(out: StreamOutput) -> pl.DataFrame:
    frame = pl.from_arrow(out.bars_1m)
    assert isinstance(frame, pl.DataFrame)
    return frame


def test_late_tick_goes_to_late_output_and_corrects_its_bar(make_ticks) -> None:
    processor = StreamProcessor(StreamConfig(), clock=lambda: FIXED_NOW)
    first = processor.process(
        make_ticks(
            [("AAPL", at(15, 0, s), 100.0 + s / 10, 10.0) for s in range(0, 60, 10)]
            + [("AAPL", at(15, 1, 10), 101.0, 5.0)]
        )
    )
    # the watermark is 15:01:05, so the 15:00 bar is final and nothing is late yet
    assert processor.watermark("AAPL") == at(15, 1, 5)
    assert first.late.num_rows == 0
    assert _bars(first).get_column("ts").to_list() == [at(15, 0)]
    assert _bars(first).get_column("high").to_list() == [105.0]

    late = make_ticks([("AAPL", at(15, 0, 30), 120.0, 1.0), ("AAPL", at(15, 1, 2), 99.0, 1.0)])
    second = processor.process(late)
    rows = pl.from_arrow(second.late)
    assert rows.get_column("reason").to_list() == ["behind_watermark", "behind_watermark"]
    assert rows.get_column("price").to_list() == [120.0, 99.0]
    corrected = _bars(second)  # only the final 15:00 bar is re-emitted, corrected
    assert corrected.get_column("ts").to_list() == [at(15, 0)]
    assert corrected.get_column("high").to_list() == [120.0]
    assert corrected.get_column("trades").to_list() == [7]
    assert processor.counts["late"] == 2


def test_watermarks_are_per_symbol(make_ticks) -> None:
    processor = StreamProcessor(StreamConfig(), clock=lambda: FIXED_NOW)
    processor.process(make_ticks([("AAPL", at(16, 0), 100.0, 1.0)]))
    out = processor.process(make_ticks([("MSFT", at(15, 0), 300.0, 1.0)]))
    assert out.late.num_rows == 0  # MSFT has its own event time
    assert processor.watermark("MSFT") == at(14, 59, 55)
    assert processor.watermark("AAPL") == at(15, 59, 55)
    assert processor.watermark("NVDA") is None


def test_ticks_beyond_retention_are_reported_but_not_applied(make_ticks) -> None:
    config = StreamConfig(late_retention=timedelta(minutes=10))
    processor = StreamProcessor(config, clock=lambda: FIXED_NOW)
    ticks = [("AAPL", at(15, m), 100.0, 1.0) for m in range(0, 40)]
    processor.process(make_ticks(ticks))
    out = processor.process(make_ticks([("AAPL", at(15, 5, 30), 500.0, 1.0)]))
    assert pl.from_arrow(out.late).get_column("reason").to_list() == ["beyond_retention"]
    assert out.bars_1m.num_rows == 0 and out.windows.num_rows == 0
    assert processor.counts["beyond_retention"] == 1


def test_bad_ticks_are_quarantined_and_the_rest_processed(make_ticks) -> None:
    good = make_ticks([("AAPL", at(15, 0, s), 100.0, 1.0) for s in range(3)])
    bad = pa.Table.from_pylist(
        [
            {
                "symbol": "AAPL",
                "ts": at(15, 0, 4),
                "price": 0.0,
                "size": 1.0,
                "source": "t",
                "seq": 9,
            },
            {
                "symbol": "AAPL",
                "ts": at(15, 0, 5),
                "price": -3.0,
                "size": 1.0,
                "source": "t",
                "seq": 10,
            },
            {
                "symbol": "AAPL",
                "ts": at(15, 0, 6),
                "price": float("nan"),
                "size": 1.0,
                "source": "t",
                "seq": 11,
            },
            {
                "symbol": "no way",
                "ts": at(15, 0, 7),
                "price": 5.0,
                "size": 1.0,
                "source": "t",
                "seq": 1,
            },
            {"symbol": "AAPL", "ts": None, "price": 5.0, "size": 1.0, "source": "t", "seq": 12},
            {
                "symbol": "AAPL",
                "ts": at(15, 0, 8),
                "price": 5.0,
                "size": -1.0,
                "source": "t",
                "seq": 13,
            },
        ],
        schema=TICK_SCHEMA,
    )
    processor = StreamProcessor(StreamConfig(), clock=lambda: FIXED_NOW)
    out = StreamOutput.concat(
        [processor.process(pa.concat_tables([good, bad])), processor.flush_all()]
    )
    assert out.quarantine.schema.equals(QUARANTINE_SCHEMA)
    rules = pl.from_arrow(out.quarantine).select("rule", "dataset", "symbol")
    assert rules.get_column("rule").to_list() == [
        "non_positive_price",
        "non_positive_price",
        "non_positive_price",
        "invalid_symbol",
        "null_field",
        "invalid_size",
    ]
    assert set(rules.get_column("dataset")) == {"ticks"}
    assert _bars(out).get_column("trades").to_list() == [3]
    assert processor.counts["quarantined"] == 6


def test_idle_symbol_is_closed_at_an_early_session_close(make_ticks) -> None:
    # 2025-11-28 (day after Thanksgiving) closes early, at 13:00 New York = 18:00 UTC
    ticks = make_ticks(
        [
            ("AAPL", at(17, 20 + i // 6, (i % 6) * 10, day=28), 100.0 + (i % 7) / 10, 10.0)
            for i in range(240)
        ]
    )
    processor = StreamProcessor(StreamConfig(), clock=lambda: FIXED_NOW)
    outputs = [processor.process(ticks)]
    assert processor.flush_session_close(at(17, 59, 59, day=28)).windows.num_rows == 0
    assert len(processor.flush_session_close(at(18, 0, 4, day=28))) == 0  # lateness not over
    closed = processor.flush_session_close(at(18, 0, 5, day=28))
    outputs.append(closed)
    assert processor.watermark("AAPL") == datetime(2025, 12, 1, 14, 30, tzinfo=UTC)
    straddling = pl.from_arrow(closed.windows).filter(pl.col("window_end") > at(18, 0, day=28))
    assert straddling.height > 0 and straddling.get_column("is_final").all()
    assert len(processor.flush_session_close(at(18, 30, day=28))) == 0  # already closed

    out = StreamOutput.concat(outputs)
    assert_frames_close(
        last_rows(out.bars_1m, ["symbol", "ts"]),
        reference_bars(ticks),
        ["symbol", "ts"],
        BAR_VALUES,
    )
    windows = last_rows(out.windows, ["symbol", "kind", "window_start"])
    assert windows.get_column("is_final").all()
    assert_frames_close(
        windows, reference_windows(ticks), ["symbol", "kind", "window_start"], WINDOW_VALUES
    )


def test_no_idle_close_before_a_regular_close(make_ticks) -> None:
    # 2025-11-26 closes at 16:00 New York = 21:00 UTC
    ticks = make_ticks([("MSFT", at(17, 50, s, day=26), 300.0, 1.0) for s in range(0, 60, 5)])
    processor = StreamProcessor(StreamConfig(), clock=lambda: FIXED_NOW)
    processor.process(ticks)
    assert len(processor.flush_session_close(at(18, 0, 5, day=26))) == 0
    assert len(processor.flush_session_close(at(21, 0, 5, day=26))) > 0
