"""The catalogue: every dataset of marketlake, declared once.

A :class:`Dataset` names its lake table (a path under the lake root, or none for tables that
live only in the warehouse), its Arrow schema, its natural key, its lake partitioning and its
warehouse table. Lake writes, warehouse DDL and loads, the stream sink and every table lister
are derived from these declarations; nothing else spells a table name or a schema.

Key columns are never null. ``ts`` columns are UTC timestamps (the session date at 00:00 UTC
for daily rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa

from marketlake.errors import ConfigError, TerminalError
from marketlake.schemas import (
    ADJUSTED_BAR_SCHEMA,
    ADJUSTMENT_FACTOR_KEYS,
    ADJUSTMENT_FACTOR_SCHEMA,
    ALERT_KEYS,
    ALERT_SCHEMA,
    BAR_KEYS,
    BAR_SCHEMA,
    BARS_1M_SCHEMA,
    CORPORATE_ACTION_KEYS,
    CURATED_ACTION_SCHEMA,
    DAILY_METRICS_SCHEMA,
    DEAD_LETTER_KEYS,
    DEAD_LETTER_SCHEMA,
    FETCH_LOG_KEYS,
    FETCH_LOG_SCHEMA,
    INDICATORS_SCHEMA,
    LAKE_LOADS_KEYS,
    LAKE_LOADS_SCHEMA,
    LATE_SCHEMA,
    MISSING_SESSION_SCHEMA,
    QUARANTINE_KEYS,
    QUARANTINE_SCHEMA,
    RECONCILIATION_ADDED,
    RECONCILIATION_KEYS,
    RECONCILIATION_SCHEMA,
    RUNS_KEYS,
    RUNS_SCHEMA,
    SERIES_KEYS,
    SESSIONS_SCHEMA,
    SYMBOLS_SCHEMA,
    TICK_KEYS,
    TICK_SCHEMA,
    WINDOW_KEYS,
    WINDOW_SCHEMA,
    conform,
)

QUARANTINE_AREA = "quarantine"
ENCODINGS = ("delta", "dictionary")
"""The column encodings a dataset may declare (see :attr:`Dataset.encodings`)."""


def _keyed(schema: pa.Schema, keys: tuple[str, ...]) -> pa.Schema:
    """``schema`` with its key columns marked non-nullable."""
    return pa.schema(
        [field.with_nullable(False) if field.name in keys else field for field in schema]
    )


@dataclass(frozen=True)
class Dataset:
    """One dataset: where it lives in the lake and the warehouse, its columns and its key.

    ``name`` is the warehouse table name. ``lake`` is the Delta table path under the lake root
    (``None``: warehouse only); the quarantine is one lake table per rejected dataset under
    ``quarantine/<dataset>`` (see :func:`quarantine_table`) and one warehouse table.
    """

    name: str
    schema: pa.Schema
    keys: tuple[str, ...]
    description: str
    lake: str | None = None
    partition_by: tuple[str, ...] = ()
    in_warehouse: bool = True
    added: tuple[str, ...] = ()
    """Nullable columns added after the dataset was first released: data without them (a lake
    table an older version wrote) reads them as nulls."""
    encodings: tuple[tuple[str, str], ...] = ()
    """``(column, encoding)`` pairs overriding, in the lake's Parquet files, the encoding
    :func:`~marketlake.lake.commits.writer_properties` picks by column type: ``delta``
    (integers and timestamps that mostly increase in write order) or ``dictionary`` (values
    that repeat)."""
    view: str | None = None
    """In the warehouse, a view defined by this SELECT instead of a table (``None``: a table).
    Every ``{name}`` in it is an identifier (a table or a column), quoted by each warehouse in
    its own dialect; the SELECT is otherwise standard SQL that every warehouse runs."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "schema", _keyed(self.schema, self.keys))
        for column, encoding in self.encodings:
            if column not in self.schema.names or encoding not in ENCODINGS:
                raise ConfigError(
                    f"dataset {self.name}: encoding {encoding!r} of column {column!r} "
                    f"(columns: {', '.join(self.schema.names)}; encodings: {', '.join(ENCODINGS)})"
                )

    @property
    def lake_table(self) -> str:
        """The Delta table path under the lake root; TerminalError for warehouse-only data."""
        if self.lake is None:
            raise TerminalError(f"dataset {self.name} is not stored in the lake")
        return self.lake

    @property
    def columns(self) -> list[str]:
        """The column names, in table order."""
        return list(self.schema.names)

    @property
    def has_symbol(self) -> bool:
        """True when rows belong to a symbol (so a symbol's rows can be replaced)."""
        return "symbol" in self.schema.names

    def conform(self, table: pa.Table) -> pa.Table:
        """``table``'s columns selected and cast to this dataset's schema (extras dropped).

        Columns of ``added`` that ``table`` lacks become nulls. Raise TerminalError when
        another column is missing, a key holds nulls or a cast fails.
        """
        for name in self.added:
            if name not in table.column_names:
                table = table.append_column(
                    self.schema.field(name), pa.nulls(table.num_rows, self.schema.field(name).type)
                )
        return conform(table, self.schema, self.name)


BARS_1D = Dataset(
    "bars_1d",
    BAR_SCHEMA,
    BAR_KEYS,
    "Daily bars as traded (not adjusted for splits or dividends).",
    lake="curated/bars_1d",
)
CORPORATE_ACTIONS = Dataset(
    "corporate_actions",
    CURATED_ACTION_SCHEMA,
    CORPORATE_ACTION_KEYS,
    "Splits (ratio: new shares per old share) and cash dividends (amount per share); "
    "inferred: a split inferred from the bars (a price gap matching a split ratio with the "
    "inverse volume change), replaced when the source reports it.",
    lake="curated/corporate_actions",
    added=("inferred",),
)
ADJUSTMENT_FACTORS = Dataset(
    "adjustment_factors",
    ADJUSTMENT_FACTOR_SCHEMA,
    ADJUSTMENT_FACTOR_KEYS,
    "Per symbol, the spans of sessions sharing one back-adjustment: bars with valid_from <= "
    "ts < valid_to (no end: every later bar) take these price and volume factors.",
    lake="analytics/adjustment_factors",
)
_ADJUSTED_VIEW = (
    "SELECT b.{symbol}, b.{ts}, b.{open} * f.{price_factor} AS {open}, "
    "b.{high} * f.{price_factor} AS {high}, b.{low} * f.{price_factor} AS {low}, "
    "b.{close} * f.{price_factor} AS {close}, b.{volume} * f.{volume_factor} AS {volume}, "
    "f.{price_factor}, f.{volume_factor} "
    "FROM {bars_1d} AS b JOIN {adjustment_factors} AS f ON f.{symbol} = b.{symbol} "
    "AND b.{ts} >= f.{valid_from} AND (f.{valid_to} IS NULL OR b.{ts} < f.{valid_to})"
)
"""The warehouse's ``bars_1d_adjusted``: the engine multiplies the same as-traded prices by
the same factors (:func:`marketlake.analytics.adjust.apply_plan`), so the values are equal to
the bit."""
BARS_1D_ADJUSTED = Dataset(
    "bars_1d_adjusted",
    ADJUSTED_BAR_SCHEMA,
    SERIES_KEYS,
    "Daily bars back-adjusted for splits and dividends, with the factors applied: a view of "
    "bars_1d and adjustment_factors.",
    view=_ADJUSTED_VIEW,
)
"""Adjusted prices are derived at read time, so the lake holds no table of them: the warehouse
view joins the bars to their spans, and a lake reader does the same with
:func:`marketlake.analytics.adjust.apply_spans`."""
DAILY_METRICS = Dataset(
    "daily_metrics",
    DAILY_METRICS_SCHEMA,
    SERIES_KEYS,
    "Per-session returns, ranges, gaps and 20-session volatility.",
    lake="analytics/daily_metrics",
)
INDICATORS_1D = Dataset(
    "indicators_1d",
    INDICATORS_SCHEMA,
    SERIES_KEYS,
    "Technical indicators on daily bars, computed by TA-Lib, warm-up null; the columns are "
    "the configured [indicators] (default: sma_20 .. obv).",
    lake="analytics/indicators_1d",
)
"""Its schema follows the configured indicator set (:func:`use_indicator_schema`)."""
MISSING_SESSIONS = Dataset(
    "missing_sessions",
    MISSING_SESSION_SCHEMA,
    SERIES_KEYS,
    "Sessions the exchange calendar expects but no source delivered.",
    lake="quality/missing_sessions",
)
RECONCILIATION = Dataset(
    "reconciliation",
    RECONCILIATION_SCHEMA,
    RECONCILIATION_KEYS,
    "Stored bars contradicted by another origin's close beyond the threshold, one finding "
    "per session or per range with a constant ratio (source_a: the stored bar's origin, "
    "source_b: the incoming one, kept: the origin bars_1d holds).",
    lake="quality/reconciliation",
    added=RECONCILIATION_ADDED,
)
FETCH_LOG = Dataset(
    "fetch_log",
    FETCH_LOG_SCHEMA,
    FETCH_LOG_KEYS,
    "What was asked of each provider, so the next run fetches only what is missing.",
    lake="quality/fetch_log",
    in_warehouse=False,
)
TICKS = Dataset(
    "ticks",
    TICK_SCHEMA,
    TICK_KEYS,
    "Trades or quotes at event time, as received from live sources.",
    lake="curated/ticks",
    # event times and sequence numbers grow; tick prices and sizes repeat (whole cents,
    # round lots): 1 M simulated ticks take 6.6 MB written in 0.16 s, against 12 MB in 0.30 s
    # with a dictionary for every column and 32 MB with byte-stream-split prices
    encodings=(("ts", "delta"), ("seq", "delta"), ("price", "dictionary"), ("size", "dictionary")),
)
BARS_1M = Dataset(
    "bars_1m",
    BARS_1M_SCHEMA,
    SERIES_KEYS,
    "One-minute bars built from ticks (ts is the start of the minute).",
    lake="curated/bars_1m",
)
STREAM_WINDOWS = Dataset(
    "stream_windows",
    WINDOW_SCHEMA,
    WINDOW_KEYS,
    "Streaming window aggregates (kind: ma_15m, ma_1h, sliding_15m_5m, ...); "
    "is_final once the watermark has passed the window end.",
    lake="analytics/stream_windows",
)
LATE_TICKS = Dataset(
    "late_ticks",
    LATE_SCHEMA,
    TICK_KEYS,
    "Ticks that arrived behind their symbol's watermark (reason: behind_watermark, "
    "applied as a correction; beyond_retention, too old to be applied).",
    lake="curated/late_ticks",
)
STREAM_ALERTS = Dataset(
    "stream_alerts",
    ALERT_SCHEMA,
    ALERT_KEYS,
    "Price-move alerts of final stream windows (ts: the window end; pct_move in percent).",
    lake="analytics/stream_alerts",
)
DEAD_LETTERS = Dataset(
    "dead_letters",
    DEAD_LETTER_SCHEMA,
    DEAD_LETTER_KEYS,
    "Bus messages the stream processor could not decode or process, with the error; the "
    "stream moved on past them (their ticks are in no other table).",
    lake="quality/dead_letters",
)
QUARANTINE = Dataset(
    "quarantine",
    QUARANTINE_SCHEMA,
    QUARANTINE_KEYS,
    "Rejected records with the rule that rejected them; resolved_at is set when a later run "
    "stored the record after all (current rows: resolved_at IS NULL).",
    added=("resolved_at", "resolution"),
)
SYMBOLS = Dataset(
    "symbols",
    SYMBOLS_SCHEMA,
    ("symbol",),
    "One row per symbol: where its bars come from and the span of sessions loaded.",
)
SESSIONS = Dataset(
    "sessions",
    SESSIONS_SCHEMA,
    ("calendar", "ts"),
    "Exchange sessions: the session date at 00:00 UTC and its open and close instants.",
)
RUNS = Dataset(
    "runs",
    RUNS_SCHEMA,
    RUNS_KEYS,
    "The pipeline run log: one row per stage of each run, with row counts and timing.",
)
LAKE_LOADS = Dataset(
    "lake_loads",
    LAKE_LOADS_SCHEMA,
    LAKE_LOADS_KEYS,
    "Per batch dataset and symbol, the lake table (its Delta id) and version its warehouse rows "
    "were loaded from and how many there were; load_warehouse skips a symbol's rows while "
    "all three still hold.",
)

DATASETS: Mapping[str, Dataset] = {
    d.name: d
    for d in (
        SYMBOLS,
        SESSIONS,
        BARS_1D,
        CORPORATE_ACTIONS,
        ADJUSTMENT_FACTORS,
        BARS_1D_ADJUSTED,
        DAILY_METRICS,
        INDICATORS_1D,
        TICKS,
        BARS_1M,
        STREAM_WINDOWS,
        LATE_TICKS,
        STREAM_ALERTS,
        DEAD_LETTERS,
        QUARANTINE,
        MISSING_SESSIONS,
        RECONCILIATION,
        FETCH_LOG,
        RUNS,
        LAKE_LOADS,
    )
}

BATCH_LOADS = (
    BARS_1D,
    CORPORATE_ACTIONS,
    ADJUSTMENT_FACTORS,
    DAILY_METRICS,
    INDICATORS_1D,
    MISSING_SESSIONS,
    RECONCILIATION,
)
"""Lake tables the batch ``load_warehouse`` stage copies into the warehouse, in order."""

DERIVED = (ADJUSTMENT_FACTORS, DAILY_METRICS, INDICATORS_1D, MISSING_SESSIONS)
"""Datasets an analytics engine computes from curated bars and corporate actions."""

RETIRED_LAKE_TABLES = ("analytics/bars_1d_adjusted",)
"""Lake tables an older version wrote and no stage updates any more. The ``process`` stage
removes them, so that no reader takes their rows, which stopped at that version, for current
ones (adjusted bars are now derived at read time from ``adjustment_factors``)."""

STREAM_OUTPUTS = (TICKS, BARS_1M, LATE_TICKS, STREAM_WINDOWS, STREAM_ALERTS)
"""Lake tables the stream processor writes (its quarantine aside)."""


def warehouse_tables() -> Mapping[str, Dataset]:
    """The datasets that are warehouse tables, by table name."""
    return {name: d for name, d in DATASETS.items() if d.in_warehouse}


def lake_datasets() -> list[Dataset]:
    """The datasets stored as lake tables (the quarantine's per-dataset tables aside)."""
    return [d for d in DATASETS.values() if d.lake is not None]


def lake_encodings(table: str) -> dict[str, str]:
    """The column encodings declared for lake table ``table`` (empty for other tables)."""
    for dataset in DATASETS.values():
        if dataset.lake == table:
            return dict(dataset.encodings)
    return {}


def get_dataset(name: str) -> Dataset:
    """The dataset called ``name``; raise ConfigError naming the valid datasets otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown dataset {name!r}; valid datasets: {', '.join(sorted(DATASETS))}"
        ) from None


def use_indicator_schema(schema: pa.Schema) -> None:
    """Make ``indicators_1d`` (lake and warehouse) hold the columns of ``schema``.

    Loading the settings calls this with the configured indicator set's schema
    (:func:`marketlake.analytics.indicator_set.configured_indicators`), so every reader,
    writer and warehouse DDL sees the columns the configuration computes.
    """
    object.__setattr__(INDICATORS_1D, "schema", _keyed(schema, INDICATORS_1D.keys))


def quarantine_table(dataset: str) -> str:
    """The lake table holding the rejected records of ``dataset``."""
    return f"{QUARANTINE_AREA}/{dataset}"
