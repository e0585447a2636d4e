"""The warehouse tables as data: name, Arrow schema, key columns and a description.

Every warehouse (DuckDB, PostgreSQL, Snowflake) creates the same tables from these specs.
Key columns are never null; ``ts`` columns are UTC timestamps (the session date at 00:00 UTC
for daily rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa

from marketlake.errors import ConfigError
from marketlake.schemas import (
    ADJUSTED_BAR_SCHEMA,
    BAR_KEYS,
    BAR_SCHEMA,
    CORPORATE_ACTION_KEYS,
    CORPORATE_ACTION_SCHEMA,
    DAILY_METRICS_SCHEMA,
    INDICATORS_SCHEMA,
    MISSING_SESSION_SCHEMA,
    OHLCV_COLUMNS,
    QUARANTINE_KEYS,
    QUARANTINE_SCHEMA,
    RECONCILIATION_KEYS,
    RECONCILIATION_SCHEMA,
    RUNS_KEYS,
    RUNS_SCHEMA,
    SERIES_KEYS,
    TICK_KEYS,
    TICK_SCHEMA,
    UTC_US,
    float_fields,
    series_schema,
)


@dataclass(frozen=True)
class TableSpec:
    """One warehouse table: its columns (an Arrow schema), natural key and purpose."""

    name: str
    schema: pa.Schema
    keys: tuple[str, ...]
    description: str

    @property
    def columns(self) -> list[str]:
        """The column names, in table order."""
        return list(self.schema.names)

    @property
    def has_symbol(self) -> bool:
        """True when rows belong to a symbol (so a symbol's rows can be replaced)."""
        return "symbol" in self.schema.names


def _required(name: str, type_: pa.DataType) -> pa.Field:
    return pa.field(name, type_, nullable=False)


def _keyed(schema: pa.Schema, keys: tuple[str, ...]) -> pa.Schema:
    """``schema`` with its key columns marked non-nullable."""
    return pa.schema(
        [field.with_nullable(False) if field.name in keys else field for field in schema]
    )


_SPECS = (
    TableSpec(
        "symbols",
        pa.schema(
            [
                _required("symbol", pa.string()),
                pa.field("source", pa.string()),
                pa.field("first_ts", UTC_US),
                pa.field("last_ts", UTC_US),
                pa.field("bars", pa.int64()),
            ]
        ),
        ("symbol",),
        "One row per symbol: where its bars come from and the span of sessions loaded.",
    ),
    TableSpec(
        "sessions",
        pa.schema(
            [
                _required("calendar", pa.string()),
                _required("ts", UTC_US),
                pa.field("open_at", UTC_US),
                pa.field("close_at", UTC_US),
            ]
        ),
        ("calendar", "ts"),
        "Exchange sessions: the session date at 00:00 UTC and its open and close instants.",
    ),
    TableSpec(
        "bars_1d",
        _keyed(BAR_SCHEMA, BAR_KEYS),
        BAR_KEYS,
        "Daily bars as traded (not adjusted for splits or dividends).",
    ),
    TableSpec(
        "corporate_actions",
        _keyed(CORPORATE_ACTION_SCHEMA, CORPORATE_ACTION_KEYS),
        CORPORATE_ACTION_KEYS,
        "Splits (ratio: new shares per old share) and cash dividends (amount per share).",
    ),
    TableSpec(
        "bars_1d_adjusted",
        ADJUSTED_BAR_SCHEMA,
        SERIES_KEYS,
        "Daily bars back-adjusted for splits and dividends, with the factors applied.",
    ),
    TableSpec(
        "daily_metrics",
        DAILY_METRICS_SCHEMA,
        SERIES_KEYS,
        "Per-session returns, ranges, gaps and 20-session volatility.",
    ),
    TableSpec(
        "indicators_1d",
        INDICATORS_SCHEMA,
        SERIES_KEYS,
        "Technical indicators on daily bars, with TA-Lib definitions and warm-up (null).",
    ),
    TableSpec(
        "ticks",
        _keyed(TICK_SCHEMA, TICK_KEYS),
        TICK_KEYS,
        "Trades or quotes at event time, as received from live sources.",
    ),
    TableSpec(
        "bars_1m",
        series_schema(*float_fields(*OHLCV_COLUMNS, "vwap"), pa.field("trades", pa.int64())),
        SERIES_KEYS,
        "One-minute bars built from ticks (ts is the start of the minute).",
    ),
    TableSpec(
        "stream_windows",
        pa.schema(
            [
                _required("symbol", pa.string()),
                _required("window_start", UTC_US),
                pa.field("window_end", UTC_US),
                _required("kind", pa.string()),
                *float_fields("mean_price", "vwap", "volatility", "high", "low", "volume"),
                pa.field("ticks", pa.int64()),
                pa.field("is_final", pa.bool_()),
                pa.field("updated_at", UTC_US),
            ]
        ),
        ("symbol", "kind", "window_start"),
        "Streaming window aggregates (kind: ma_15m, ma_1h, sliding_15m_5m, ...); "
        "is_final once the watermark has passed the window end.",
    ),
    TableSpec(
        "late_ticks",
        _keyed(TICK_SCHEMA.append(pa.field("reason", pa.string(), nullable=False)), TICK_KEYS),
        TICK_KEYS,
        "Ticks that arrived behind their symbol's watermark (reason: behind_watermark, "
        "applied as a correction; beyond_retention, too old to be applied).",
    ),
    TableSpec(
        "stream_alerts",
        pa.schema(
            [
                _required("symbol", pa.string()),
                _required("ts", UTC_US),
                _required("kind", pa.string()),
                pa.field("pct_move", pa.float64(), nullable=False),
                pa.field("detail", pa.string()),
            ]
        ),
        ("symbol", "kind", "ts"),
        "Price-move alerts of final stream windows (ts: the window end; pct_move in percent).",
    ),
    TableSpec(
        "quarantine",
        _keyed(QUARANTINE_SCHEMA, QUARANTINE_KEYS),
        QUARANTINE_KEYS,
        "Rejected records with the rule that rejected them.",
    ),
    TableSpec(
        "missing_sessions",
        MISSING_SESSION_SCHEMA,
        SERIES_KEYS,
        "Sessions the exchange calendar expects but no source delivered.",
    ),
    TableSpec(
        "reconciliation",
        RECONCILIATION_SCHEMA,
        RECONCILIATION_KEYS,
        "Sessions where two sources' closes differ by more than the threshold "
        "(source_a: the bar stored first, source_b: the bar that replaced it).",
    ),
    TableSpec(
        "runs",
        RUNS_SCHEMA,
        RUNS_KEYS,
        "The pipeline run log: one row per stage of each run, with row counts and timing.",
    ),
)

TABLES: Mapping[str, TableSpec] = {spec.name: spec for spec in _SPECS}


def get_table_spec(name: str) -> TableSpec:
    """The spec of table ``name``; raise ConfigError naming the valid tables otherwise."""
    try:
        return TABLES[name]
    except KeyError:
        raise ConfigError(
            f"unknown warehouse table {name!r}; valid tables: {', '.join(sorted(TABLES))}"
        ) from None
