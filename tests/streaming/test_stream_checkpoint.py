"""Checkpoint and restore in the middle of a stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from stream_reference import FIXED_NOW

from marketlake.errors import ConfigError, TerminalError
from marketlake.sources.live import SimTickSource
from marketlake.streaming import StreamConfig, StreamOutput, StreamProcessor

START = datetime(2025, 11, 25, 14, 30, tzinfo=UTC)
TABLES = ("bars_1m", "windows", "late", "alerts", "quarantine")


def _batches() -> list:
    source = SimTickSource(
        ["AAPL", "MSFT"],
        start=START,
        count=16_000,
        event_rate_per_s=4.0,
        batch_size=1_000,
        out_of_order_fraction=0.05,
        late_fraction=0.02,
        late_by_s=45.0,
    )
    return list(source.ticks())


def _frames(out: StreamOutput) -> dict[str, pl.DataFrame]:
    frames = {}
    for name in TABLES:
        frame = pl.from_arrow(getattr(out, name))
        assert isinstance(frame, pl.DataFrame)
        frames[name] = frame
    return frames


def _assert_same(ours: pl.DataFrame, theirs: pl.DataFrame) -> None:
    """Same rows in the same order; sums of floats may differ in the last bit (parallel
    summation), everything else exactly."""
    assert_frame_equal(ours, theirs, rel_tol=1e-12, abs_tol=0.0)
    exact = [c for c, t in ours.schema.items() if t != pl.Float64]
    assert ours.select(exact).equals(theirs.select(exact))


@pytest.mark.parametrize("cut", [3, 9])
def test_restore_mid_stream_gives_the_same_outputs(cut: int) -> None:
    batches = _batches()
    config = StreamConfig(alert_pct=0.5)
    whole = StreamProcessor(config, clock=lambda: FIXED_NOW)
    uninterrupted = [whole.process(b) for b in batches] + [whole.flush_all()]

    first = StreamProcessor(config, clock=lambda: FIXED_NOW)
    before = [first.process(b) for b in batches[:cut]]
    checkpoint = first.snapshot()
    # the first processor keeps going after the checkpoint and is then killed: its extra
    # outputs were never committed, so the restored processor replays those batches
    first.process(batches[cut])
    resumed = StreamProcessor.restore(config, checkpoint, clock=lambda: FIXED_NOW)
    after = [resumed.process(b) for b in batches[cut:]] + [resumed.flush_all()]

    for mine, theirs in zip(after, uninterrupted[cut:], strict=True):
        ours, reference = _frames(mine), _frames(theirs)
        for name in TABLES:
            _assert_same(ours[name], reference[name])
    assert resumed.counts == whole.counts
    combined = StreamOutput.concat(before + after)
    expected = StreamOutput.concat(uninterrupted)
    for name in TABLES:
        _assert_same(_frames(combined)[name], _frames(expected)[name])
    assert _frames(expected)["late"].height > 0


def test_restore_refuses_another_configuration_or_broken_bytes() -> None:
    processor = StreamProcessor(StreamConfig(), clock=lambda: FIXED_NOW)
    processor.process(_batches()[0])
    checkpoint = processor.snapshot()
    with pytest.raises(ConfigError, match="different stream configuration"):
        StreamProcessor.restore(StreamConfig(allowed_lateness=timedelta(seconds=1)), checkpoint)
    with pytest.raises(TerminalError):
        StreamProcessor.restore(StreamConfig(), b"garbage")
    with pytest.raises(TerminalError):
        StreamProcessor.restore(StreamConfig(), checkpoint[: len(checkpoint) // 2])
