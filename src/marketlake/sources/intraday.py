"""Intraday bars as providers return them: one row per interval, event time in UTC."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import pyarrow as pa

from marketlake.schemas import UTC_US

INTRADAY_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("ts", UTC_US, nullable=False),  # start of the interval, UTC
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),
        pa.field("volume", pa.float64()),
    ]
)


def intraday_table(
    symbol: str,
    ts: Sequence[datetime],
    columns: Mapping[str, Sequence[float | None]],
) -> pa.Table:
    """Build an ``INTRADAY_SCHEMA`` table sorted by ``ts`` from parallel value lists."""
    table = pa.table(
        {
            "symbol": pa.array([symbol] * len(ts), pa.string()),
            "ts": pa.array(list(ts), UTC_US),
            **{
                name: pa.array(list(columns[name]), pa.float64())
                for name in ("open", "high", "low", "close", "volume")
            },
        },
        schema=INTRADAY_SCHEMA,
    )
    return table.sort_by("ts") if len(ts) else table
