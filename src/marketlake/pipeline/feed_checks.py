"""Feed-quality rules for provider data, applied by the lake writer before row validation.

Real feeds (``yahoo``, ``alphavantage`` and imported files, ``file:<name>``) make errors the
simulator does not: all-zero rows, prices in the wrong currency unit, implausible or doubled
dividends, split events without the price drop. The detectors of
:mod:`marketlake.quality.feeds` catch them; their rejects go to quarantine under the detector's
rule name. Price drops that match a split ratio, with the inverse volume change, but no split
event are splits the source did not report: they are inferred
(:mod:`marketlake.quality.splits`) and the bars kept. Rows of other sources pass through
untouched.

A chunk may hold only a symbol's newest sessions, so the last stored bar before the chunk
(``previous``) gives the context: it is the reference price level for ``price_100x`` and the
close before an ex-date for the dividend and split checks. A split is judged only when its
ex-date falls within the chunk's bars of that symbol; a split re-sent with later bars (Yahoo
sends every split from the start of the range) is not judged against the wrong days.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA, QUARANTINE_SCHEMA, SPLIT

PROVIDER_SOURCES = ("yahoo", "alphavantage", "csv", "parquet")
FILE_ORIGIN_PREFIX = "file:"  # imported files: ``file:<file name>``
FEED_RULES = ("zero_row", "price_100x", "bad_dividend", "unadjusted_split")


@dataclass
class FeedCheck:
    """Rows kept, quarantine rows (``QUARANTINE_SCHEMA``) and quarantine rows per rule."""

    kept: pa.Table
    rejects: pa.Table = field(default_factory=QUARANTINE_SCHEMA.empty_table)
    counts: dict[str, int] = field(default_factory=dict)
    inferred: pa.Table = field(default_factory=CORPORATE_ACTION_SCHEMA.empty_table)
    """Splits inferred from the bars (``CORPORATE_ACTION_SCHEMA``), to store marked inferred."""


def _provider_mask(source: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Which of ``source`` are provider (or provider-file) origins; null is not one."""
    mask = pc.or_(
        pc.is_in(source, value_set=pa.array(PROVIDER_SOURCES, pa.string())),
        pc.starts_with(source, FILE_ORIGIN_PREFIX),
    )
    return mask.fill_null(False)


def _by_provider(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """``table``'s rows from providers, and the others. A chunk holds few distinct origins,
    so they are judged once each; only a chunk mixing both kinds is filtered row by row."""
    source = table.column("source")
    judged = _provider_mask(pc.unique(source))
    if not pc.any(judged).as_py():
        return table.slice(0, 0), table
    if pc.all(judged).as_py():
        return table, table.slice(0, 0)
    mask = _provider_mask(source)
    return table.filter(mask), table.filter(pc.invert(mask))


def _result(kept: Iterable[pa.Table], rejects: Iterable[pa.Table], schema: pa.Schema) -> FeedCheck:
    parts = [t.cast(schema) for t in kept if t.num_rows]
    found = [r.cast(QUARANTINE_SCHEMA) for r in rejects if r.num_rows]
    table = pa.concat_tables(parts) if parts else schema.empty_table()
    rejected = pa.concat_tables(found) if found else QUARANTINE_SCHEMA.empty_table()
    counts: dict[str, int] = {}
    for rule in rejected.column("rule").to_pylist():
        counts[rule] = counts.get(rule, 0) + 1
    return FeedCheck(table, rejected, counts)


def _context(bars: pa.Table, previous: pa.Table | None) -> pa.Table:
    parts = [bars.cast(BAR_SCHEMA)]
    if previous is not None and previous.num_rows:
        parts.insert(0, previous.cast(BAR_SCHEMA))
    return pa.concat_tables(parts)


def check_feed_actions(
    actions: pa.Table, bars: pa.Table, previous: pa.Table | None = None
) -> FeedCheck:
    """Apply ``bad_dividend`` and ``unadjusted_split`` to the provider rows of ``actions``.

    ``actions`` must have unique (symbol, ex_date, kind) keys (validated actions do); ``bars``
    are the chunk's incoming bars and ``previous`` the last stored bar of each symbol.
    """
    from marketlake.quality.feeds import detect_bad_dividends, detect_unadjusted_splits

    provided, others = _by_provider(actions)
    if provided.num_rows == 0:
        return FeedCheck(actions)
    context = _context(bars, previous)
    good, bad_dividends = detect_bad_dividends(provided, context)
    inside = _within_bars(good, bars)
    judged_good, bad_splits = detect_unadjusted_splits(good.filter(inside), context)
    return _result(
        [others, good.filter(pc.invert(inside)), judged_good],
        [bad_dividends, bad_splits],
        CORPORATE_ACTION_SCHEMA,
    )


def _within_bars(actions: pa.Table, bars: pa.Table) -> pa.Array:
    """True for split rows whose ex-date lies within the symbol's span of ``bars``."""
    spans: dict[str, tuple[Any, Any]] = {}
    if bars.num_rows:
        grouped = bars.group_by("symbol").aggregate([("ts", "min"), ("ts", "max")])
        for row in grouped.to_pylist():
            spans[row["symbol"]] = (row["ts_min"], row["ts_max"])
    flags = []
    for symbol, ex_date, kind in zip(
        actions.column("symbol").to_pylist(),
        actions.column("ex_date").to_pylist(),
        actions.column("kind").to_pylist(),
        strict=True,
    ):
        span = spans.get(symbol)
        flags.append(kind == SPLIT and span is not None and span[0] <= ex_date <= span[1])
    return pa.array(flags, pa.bool_())


def check_feed_bars(
    bars: pa.Table, actions: pa.Table, previous: pa.Table | None = None
) -> FeedCheck:
    """Apply ``zero_row`` and ``price_100x`` to the provider rows of ``bars`` and infer the
    splits they show but ``actions`` (every known action of the chunk's symbols, stored and
    new) lack; ``previous`` (the last stored bar of each symbol) shows a gap into the chunk."""
    from marketlake.quality.feeds import detect_price_100x, detect_zero_rows
    from marketlake.quality.splits import infer_splits

    provided, others = _by_provider(bars)
    if provided.num_rows == 0:
        return FeedCheck(bars)
    nonzero, zero_rows = detect_zero_rows(provided)
    references: dict[str, float] = {}
    if previous is not None:
        for row in previous.select(["symbol", "close"]).to_pylist():
            if row["close"]:
                references[row["symbol"]] = row["close"]
    kept: list[pa.Table] = []
    unit_errors: list[pa.Table] = []
    for symbol in pc.unique(nonzero.column("symbol")).to_pylist():
        part = nonzero.filter(pc.equal(nonzero.column("symbol"), symbol))
        good, bad = detect_price_100x(part, reference=references.get(symbol))
        kept.append(good)
        unit_errors.append(bad)
    levelled = pa.concat_tables(kept) if kept else nonzero.schema.empty_table()
    checked = _result([others, levelled], [zero_rows, *unit_errors], BAR_SCHEMA)
    checked.inferred = infer_splits(_context(levelled, previous), actions)
    return checked
