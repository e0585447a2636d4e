"""Factories for small hand-made bar and corporate-action tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA

NOW = datetime(2024, 1, 2, 12, 0, tzinfo=UTC)

BarRow = tuple[str, str, Any, Any, Any, Any, Any]  # symbol, day, open, high, low, close, volume


def day(text: str) -> datetime:
    """Midnight UTC of an ISO date (or the instant of an ISO datetime, read as UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def bar_table(rows: Sequence[BarRow], source: str = "test") -> pa.Table:
    """A ``BAR_SCHEMA`` table from (symbol, day, open, high, low, close, volume) rows."""
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[]] * 7
    return pa.table(
        {
            "symbol": pa.array(columns[0], pa.string()),
            "ts": pa.array([day(d) for d in columns[1]], BAR_SCHEMA.field("ts").type),
            "open": pa.array(columns[2], pa.float64()),
            "high": pa.array(columns[3], pa.float64()),
            "low": pa.array(columns[4], pa.float64()),
            "close": pa.array(columns[5], pa.float64()),
            "volume": pa.array(columns[6], pa.float64()),
            "source": pa.array([source] * len(rows), pa.string()),
            "ingested_at": pa.array([NOW] * len(rows), BAR_SCHEMA.field("ts").type),
        },
        schema=BAR_SCHEMA,
    )


def action_table(rows: Sequence[tuple[str, str, str, Any, Any]]) -> pa.Table:
    """A ``CORPORATE_ACTION_SCHEMA`` table from (symbol, day, kind, ratio, amount) rows."""
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[]] * 5
    return pa.table(
        {
            "symbol": pa.array(columns[0], pa.string()),
            "ex_date": pa.array([day(d) for d in columns[1]], BAR_SCHEMA.field("ts").type),
            "kind": pa.array(columns[2], pa.string()),
            "ratio": pa.array(columns[3], pa.float64()),
            "amount": pa.array(columns[4], pa.float64()),
            "source": pa.array(["test"] * len(rows), pa.string()),
            "ingested_at": pa.array([NOW] * len(rows), BAR_SCHEMA.field("ts").type),
        },
        schema=CORPORATE_ACTION_SCHEMA,
    )


def flat(symbol: str, days: Sequence[str], price: float = 10.0) -> list[BarRow]:
    """Well-formed bars at a constant price on each of ``days``."""
    return [(symbol, d, price, price * 1.01, price * 0.99, price, 1000.0) for d in days]
