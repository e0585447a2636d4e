"""Ticks sent twice count once: in one batch, across batches, and after a restore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from stream_reference import (
    BAR_VALUES,
    FIXED_NOW,
    WINDOW_VALUES,
    assert_frames_close,
    reference_bars,
)

from marketlake.sources.live import SimTickSource
from marketlake.streaming import StreamConfig, StreamOutput, StreamProcessor
from marketlake.streaming.outputs import DUPLICATE, NEW, UNCHECKED

START = datetime(2025, 11, 25, 14, 30, tzinfo=UTC)


def _ticks(count: int = 6_000, **extra: float) -> pa.Table:
    source = SimTickSource(
        ["AAPL", "MSFT"], start=START, count=count, event_rate_per_s=4.0, **extra
    )
    return pa.Table.from_batches(list(source.ticks()))


def _run(batches: list[pa.Table], config: StreamConfig | None = None) -> dict[str, pl.DataFrame]:
    processor = StreamProcessor(config or StreamConfig(), clock=lambda: FIXED_NOW)
    outs = [processor.process(batch) for batch in batches] + [processor.flush_all()]
    out = StreamOutput.concat(outs)
    frames = {}
    for name in ("bars_1m", "windows"):
        frame = pl.from_arrow(getattr(out, name))
        assert isinstance(frame, pl.DataFrame)
        keys = ["symbol", "ts"] if name == "bars_1m" else ["symbol", "kind", "window_start"]
        frames[name] = frame.unique(keys, keep="last", maintain_order=True).sort(keys)
    frames["counts"] = pl.DataFrame([processor.counts])
    return frames


def _slices(table: pa.Table, size: int) -> list[pa.Table]:
    return [table.slice(i, size) for i in range(0, table.num_rows, size)]


def test_a_stream_sent_twice_gives_the_bars_and_windows_of_one() -> None:
    ticks = _ticks()
    once = _run(_slices(ticks, 500))
    resent = ticks.slice(0, 4_000)  # a restarted producer sends the first 4,000 again
    twice = _run([*_slices(ticks, 500), *_slices(resent, 700)])
    together = _run([pa.concat_tables([ticks, resent]).combine_chunks()])  # one batch
    interleaved = _run([pa.concat_tables([part, part]) for part in _slices(ticks, 400)])
    for other in (twice, together, interleaved):
        assert_frames_close(other["bars_1m"], once["bars_1m"], ["symbol", "ts"], BAR_VALUES)
        assert_frames_close(
            other["windows"],
            once["windows"],
            ["symbol", "kind", "window_start"],
            [*WINDOW_VALUES, "is_final"],
        )
    assert once["bars_1m"].get_column("trades").sum() == ticks.num_rows
    assert_frames_close(once["bars_1m"], reference_bars(ticks), ["symbol", "ts"], BAR_VALUES)
    assert once["counts"].item(0, "duplicates") == 0
    assert twice["counts"].item(0, "duplicates") == 4_000
    assert interleaved["counts"].item(0, "duplicates") == ticks.num_rows
    assert twice["counts"].item(0, "ticks") == ticks.num_rows


def test_fates_tell_new_duplicate_and_too_old_ticks() -> None:
    ticks = _ticks(2_000)
    config = StreamConfig(late_retention=timedelta(minutes=2))
    processor = StreamProcessor(config, clock=lambda: FIXED_NOW)
    _, first = processor.process_ticks(ticks)
    assert (first == NEW).all()
    early, recent = ticks.slice(0, 10), ticks.slice(ticks.num_rows - 10, 10)
    _, again = processor.process_ticks(pa.concat_tables([early, recent]))
    assert again.tolist() == [UNCHECKED] * 10 + [DUPLICATE] * 10  # early ones: beyond 2 min
    assert processor.counts["duplicates"] == 10
    assert processor.counts["beyond_retention"] == 10


def test_a_restored_processor_still_knows_the_ticks_it_applied() -> None:
    ticks = _ticks(4_000, out_of_order_fraction=0.1)
    processor = StreamProcessor(StreamConfig(), clock=lambda: FIXED_NOW)
    processor.process(ticks.slice(0, 3_000))
    restored = StreamProcessor.restore(StreamConfig(), processor.snapshot())
    tail = ticks.slice(2_000)  # 1,000 ticks it has seen, then 1,000 new ones
    _, fates = restored.process_ticks(tail)
    assert np.array_equal(fates, np.repeat([DUPLICATE, NEW], 1_000))


def test_a_batch_that_fails_leaves_no_tick_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = _ticks(2_000)
    processor = StreamProcessor(StreamConfig(), clock=lambda: FIXED_NOW)
    processor.process(ticks.slice(0, 1_000))
    failing = ticks.slice(1_000, 500)

    def fail(*args: object, **kwargs: object) -> None:  # after the batch's keys were noted
        raise RuntimeError("emission failed")

    with monkeypatch.context() as patch:
        patch.setattr(processor, "_emit", fail)
        with pytest.raises(RuntimeError):
            processor.process_ticks(failing)
    # the batch is set aside (dead-lettered) with no trace: when its ticks come again, after
    # later ones (so they are looked up), they are new, not repeats
    _, later = processor.process_ticks(ticks.slice(1_500))
    _, again = processor.process_ticks(failing)
    assert (later == NEW).all() and (again == NEW).all()
    assert processor.counts["duplicates"] == 0
    assert processor.counts["ticks"] == ticks.num_rows
