"""Provisional window rows of small batches (computed in Python) equal the Polars query's."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa
import pytest

from marketlake.schemas import WINDOW_SCHEMA
from marketlake.streaming import SlidingWindow, StreamConfig, window_rows
from marketlake.streaming.bars import KEYS, MINUTE_US, STATE_SCHEMA
from marketlake.streaming.emission import as_table, provisional_windows
from marketlake.streaming.frames import collect
from marketlake.streaming.window_rows import provisional_rows, sliding_requests

NOW = datetime(2025, 11, 25, 15, 0, tzinfo=UTC)
BASE = 29_000_000 * MINUTE_US  # a minute boundary


def _state(seed: int) -> pl.DataFrame:
    """Minute aggregates of three symbols over 90 minutes, some minutes missing, one bar
    without volume."""
    rng = random.Random(seed)
    rows = []
    for symbol in ("AAPL", "MSFT", "NVDA"):
        price = rng.uniform(50, 500)
        for m in range(90):
            if rng.random() < 0.2:
                continue
            price *= math.exp(rng.gauss(0, 0.002))
            low, high = price * 0.999, price * 1.001
            volume = 0.0 if m == 7 else rng.uniform(1, 1_000)
            minute = BASE + m * MINUTE_US
            rows.append(
                (symbol, minute, price, high, low, price * 1.0002, volume, volume * price,
                 rng.randint(1, 50), minute, 0, minute + 1, 1)
            )  # fmt: skip
    return pl.DataFrame(rows, schema=STATE_SCHEMA, orient="row")


def _polars_rows(config: StreamConfig, state: pl.DataFrame, touched: pl.DataFrame) -> pa.Table:
    lazy = provisional_windows(config, state.lazy(), touched.lazy(), NOW)
    assert lazy is not None
    rows = as_table(collect(lazy), WINDOW_SCHEMA)
    return rows.sort_by(
        [("symbol", "ascending"), ("kind", "ascending"), ("window_start", "ascending")]
    )


def _assert_same(python: pa.Table, polars: pa.Table) -> None:
    assert python.schema == polars.schema
    assert python.num_rows == polars.num_rows > 0
    for name in WINDOW_SCHEMA.names:
        ours, theirs = python.column(name).to_pylist(), polars.column(name).to_pylist()
        if WINDOW_SCHEMA.field(name).type == pa.float64():
            for a, b in zip(ours, theirs, strict=True):
                assert (a is None and b is None) or math.isclose(a, b, rel_tol=1e-12), name
        else:
            assert ours == theirs, name


@pytest.mark.parametrize("small_state", [0, window_rows.SMALL_STATE], ids=["queried", "listed"])
def test_python_rows_equal_the_polars_query_for_touched_minutes(
    small_state: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether the bars are read from the state by a Polars query or as Python lists."""
    monkeypatch.setattr(window_rows, "SMALL_STATE", small_state)
    config = StreamConfig(
        sliding=(SlidingWindow(), SlidingWindow(timedelta(minutes=10), timedelta(minutes=10)))
    )
    for seed in range(5):
        state = _state(seed)
        touched = state.sample(n=12, seed=seed).select(KEYS)
        requests = sliding_requests(config, touched)
        _assert_same(provisional_rows(requests, state, NOW), _polars_rows(config, state, touched))


def test_a_window_with_one_bar_has_no_volatility_and_a_bar_without_volume_no_vwap() -> None:
    config = StreamConfig(sliding=(SlidingWindow(timedelta(minutes=1), timedelta(minutes=1)),))
    state = _state(0)
    touched = state.filter(pl.col("minute") == BASE + 7 * MINUTE_US).select(KEYS)
    rows = provisional_rows(sliding_requests(config, touched), state, NOW)
    _assert_same(rows, _polars_rows(config, state, touched))
    assert set(rows.column("volatility").to_pylist()) == {None}
    assert set(rows.column("vwap").to_pylist()) == {None}
