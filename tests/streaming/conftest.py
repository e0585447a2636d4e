"""Fixtures of the stream-processor tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import pyarrow as pa
import pytest

from marketlake.schemas import TICK_SCHEMA


@pytest.fixture
def make_ticks() -> Callable[[Iterable[tuple[str, datetime, float, float]]], pa.Table]:
    """Build a Tick table from (symbol, ts, price, size) rows; seq counts per symbol."""

    def build(rows: Iterable[tuple[str, datetime, float, float]]) -> pa.Table:
        counters: dict[str, int] = {}
        records = []
        for symbol, ts, price, size in rows:
            counters[symbol] = counters.get(symbol, 0) + 1
            records.append(
                {
                    "symbol": symbol,
                    "ts": ts,
                    "price": price,
                    "size": size,
                    "source": "test",
                    "seq": counters[symbol],
                }
            )
        return pa.Table.from_pylist(records, schema=TICK_SCHEMA)

    return build
