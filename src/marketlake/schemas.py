"""Canonical Arrow schemas: every adapter produces these, every sink consumes them."""

from __future__ import annotations

import pyarrow as pa

UTC_US = pa.timestamp("us", tz="UTC")

BAR_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("ts", UTC_US, nullable=False),  # session date at 00:00 UTC for daily bars
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),
        pa.field("volume", pa.float64()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("ingested_at", UTC_US, nullable=False),
    ]
)
BAR_KEYS = ("symbol", "ts")

CORPORATE_ACTION_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("ex_date", UTC_US, nullable=False),  # session date at 00:00 UTC
        pa.field("kind", pa.string(), nullable=False),  # "split" | "dividend"
        pa.field("ratio", pa.float64()),  # split: new shares per old share (4.0 for 4-for-1)
        pa.field("amount", pa.float64()),  # dividend: cash per share, as traded
        pa.field("source", pa.string(), nullable=False),
        pa.field("ingested_at", UTC_US, nullable=False),
    ]
)
CORPORATE_ACTION_KEYS = ("symbol", "ex_date", "kind")
CURATED_ACTION_SCHEMA = pa.schema(
    [
        *CORPORATE_ACTION_SCHEMA,
        # true: a split the lake writer inferred from a price gap matching a split ratio with
        # the inverse volume change; false or null (rows written before the column): reported
        # by the source
        pa.field("inferred", pa.bool_()),
    ]
)

TICK_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("ts", UTC_US, nullable=False),  # event time
        pa.field("price", pa.float64(), nullable=False),
        pa.field("size", pa.float64()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
    ]
)
TICK_KEYS = ("symbol", "ts", "seq")

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),  # bars_1d, corporate_actions, ticks...
        pa.field("record_id", pa.string(), nullable=False),  # stable hash of the record
        pa.field("rule", pa.string(), nullable=False),  # the rule that rejected it
        pa.field("detail", pa.string()),  # human-readable reason
        pa.field("symbol", pa.string()),
        pa.field("ts", UTC_US),
        pa.field("record", pa.string()),  # the record as JSON
        pa.field("source", pa.string()),
        pa.field("quarantined_at", UTC_US, nullable=False),
        # set when a later run stored the record after all (e.g. the split that explains it
        # arrived): the row is kept for the audit but no longer counts as current
        pa.field("resolved_at", UTC_US),
        pa.field("resolution", pa.string()),
    ]
)
QUARANTINE_KEYS = ("dataset", "record_id", "rule")

SERIES_KEYS = ("symbol", "ts")  # per-symbol daily series: one row per symbol and session


def series_schema(*fields: pa.Field) -> pa.Schema:
    """A per-symbol time series keyed by (symbol, ts), both required."""
    return pa.schema(
        [
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("ts", UTC_US, nullable=False),
            *fields,
        ]
    )


def float_fields(*names: str) -> list[pa.Field]:
    """Nullable float64 fields named ``names``."""
    return [pa.field(name, pa.float64()) for name in names]


OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")

ADJUSTED_BAR_SCHEMA = series_schema(*float_fields(*OHLCV_COLUMNS, "price_factor", "volume_factor"))

ADJUSTMENT_FACTOR_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("valid_from", UTC_US, nullable=False),
        pa.field("valid_to", UTC_US),  # exclusive; null: open-ended (the latest span)
        *float_fields("price_factor", "volume_factor"),
    ]
)
ADJUSTMENT_FACTOR_KEYS = ("symbol", "valid_from")

METRIC_COLUMNS = ("change_pct", "log_return", "range_pct", "gap_pct", "volatility_20d")
DAILY_METRICS_SCHEMA = series_schema(*float_fields("close", *METRIC_COLUMNS))

INDICATOR_COLUMNS = (
    "sma_20",
    "ema_20",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "atr_14",
    "stddev_20",
    "obv",
)
INDICATORS_SCHEMA = series_schema(*float_fields(*INDICATOR_COLUMNS))

MISSING_SESSION_SCHEMA = series_schema(
    pa.field("source", pa.string()),
    pa.field("detected_at", UTC_US, nullable=False),
)

RECONCILIATION_SCHEMA = series_schema(  # ts: the finding's first session
    pa.field("source_a", pa.string(), nullable=False),  # the stored bar's origin
    pa.field("source_b", pa.string(), nullable=False),  # the incoming bar's origin
    *float_fields("close_a", "close_b", "rel_diff"),
    pa.field("flagged_at", UTC_US, nullable=False),
    pa.field("kind", pa.string()),  # "value": one session | "ratio": a constant ratio over a range
    pa.field("ts_end", UTC_US),  # the finding's last session
    pa.field("sessions", pa.int64()),  # sessions the finding covers
    pa.field("ratio", pa.float64()),  # close_b / close_a (the range's median for "ratio")
    pa.field("kept", pa.string()),  # the origin whose bars bars_1d holds after the finding
    pa.field("action", pa.string()),  # the validation.on_conflict choice applied
    pa.field("detail", pa.string()),
)
RECONCILIATION_ADDED = ("kind", "ts_end", "sessions", "ratio", "kept", "action", "detail")
RECONCILIATION_KEYS = ("symbol", "ts", "source_a", "source_b")

BARS_1M_SCHEMA = series_schema(  # ts: the start of the minute
    *float_fields(*OHLCV_COLUMNS, "vwap"), pa.field("trades", pa.int64())
)

WINDOW_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("window_start", UTC_US, nullable=False),
        pa.field("window_end", UTC_US, nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("mean_price", pa.float64()),  # mean of the 1-minute closes in the window
        pa.field("vwap", pa.float64()),
        pa.field("volatility", pa.float64()),  # sample std of 1-minute log returns
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("volume", pa.float64()),
        pa.field("ticks", pa.int64()),
        pa.field("is_final", pa.bool_(), nullable=False),
        pa.field("updated_at", UTC_US, nullable=False),
    ]
)
WINDOW_KEYS = ("symbol", "kind", "window_start")

LATE_SCHEMA = TICK_SCHEMA.append(pa.field("reason", pa.string(), nullable=False))
LATE_REASONS = ("behind_watermark", "beyond_retention")

ALERT_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("ts", UTC_US, nullable=False),  # the end of the window that moved
        pa.field("kind", pa.string(), nullable=False),
        pa.field("pct_move", pa.float64(), nullable=False),  # percent: 2.5 means +2.5 %
        pa.field("detail", pa.string()),
    ]
)
ALERT_KEYS = ("symbol", "kind", "ts")

DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("consumer_group", pa.string(), nullable=False),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition_id", pa.int64(), nullable=False),
        pa.field("message_offset", pa.int64(), nullable=False),
        pa.field("message_key", pa.string()),  # the symbol the producer keyed it by
        pa.field("ticks", pa.int64()),  # ticks in the message (null: it could not be decoded)
        pa.field("stage", pa.string(), nullable=False),  # decode | process
        pa.field("error", pa.string(), nullable=False),
        pa.field("failed_at", UTC_US, nullable=False),
    ]
)
DEAD_LETTER_KEYS = ("consumer_group", "topic", "partition_id", "message_offset")

FETCH_LOG_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("start", UTC_US, nullable=False),  # first session asked for, 00:00 UTC
        pa.field("end", UTC_US, nullable=False),  # last session asked for, 00:00 UTC
        pa.field("kind", pa.string(), nullable=False),  # fetch | refetch
        pa.field("checked", pa.bool_(), nullable=False),  # completeness re-fetch done
        pa.field("run_id", pa.string()),
        pa.field("requested_at", UTC_US, nullable=False),
    ]
)
FETCH_LOG_KEYS = ("symbol", "source", "start", "end")

SYMBOLS_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("first_ts", UTC_US),
        pa.field("last_ts", UTC_US),
        pa.field("bars", pa.int64()),
    ]
)

SESSIONS_SCHEMA = pa.schema(
    [
        pa.field("calendar", pa.string(), nullable=False),
        pa.field("ts", UTC_US, nullable=False),
        pa.field("open_at", UTC_US),
        pa.field("close_at", UTC_US),
    ]
)

LAKE_LOADS_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("lake_table_id", pa.string()),
        pa.field("lake_version", pa.int64()),
        pa.field("row_count", pa.int64()),
        pa.field("loaded_at", UTC_US),
    ]
)
LAKE_LOADS_KEYS = ("dataset", "symbol")

RUN_STATUSES = ("running", "succeeded", "failed", "retrying", "abandoned")
RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # one of RUN_STATUSES
        pa.field("attempt", pa.int64()),
        pa.field("started_at", UTC_US),
        pa.field("finished_at", UTC_US),
        pa.field("rows_in", pa.int64()),
        pa.field("rows_out", pa.int64()),
        pa.field("quarantined", pa.int64()),
        pa.field("duration_s", pa.float64()),
        pa.field("detail", pa.string()),
    ]
)
RUNS_KEYS = ("run_id", "stage")

SPLIT = "split"
DIVIDEND = "dividend"


def empty_table(schema: pa.Schema) -> pa.Table:
    """An empty table with ``schema``."""
    return schema.empty_table()


def conform(table: pa.Table, schema: pa.Schema, name: str = "data") -> pa.Table:
    """Select and cast ``table``'s columns to ``schema`` (extra columns are dropped).

    Raise TerminalError naming ``name`` when a column is missing, a required column holds
    nulls or a column cannot be cast.
    """
    from marketlake.errors import TerminalError

    missing = [column for column in schema.names if column not in table.column_names]
    if missing:
        raise TerminalError(
            f"cannot load {name}: data lacks column(s) {', '.join(missing)}; "
            f"the table has {', '.join(schema.names)}"
        )
    selected = table.select(schema.names)
    for field in schema:
        nulls = selected.column(field.name).null_count
        if not field.nullable and nulls:
            raise TerminalError(
                f"cannot load {name}: column {field.name} is required but has {nulls} null(s)"
            )
    try:
        return selected.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError) as exc:
        raise TerminalError(f"cannot load {name}: {exc}") from exc
