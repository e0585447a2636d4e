"""The ``process`` stage: the run's engine computes the derived datasets from the lake.

A symbol's derived rows are recomputed from its whole curated history, so a new split or
dividend rebuilds the affected history instead of patching it. Only the run's symbols that
brought anything new (marked by the lake writer, :mod:`marketlake.pipeline.pending`) or have
no derived rows yet are recomputed: a re-run with nothing new rewrites nothing. The engine
takes the curated rows ``consume_history`` handed over in this process, when it can, instead
of reading them back; run alone, the stage reads the lake. A symbol that only gained bars
after its derived rows (every mark naming it says so) is still recomputed whole, but only its
rows after the stored ones are appended (``EngineJob.appended``). When the configured indicator
set differs from the one ``indicators_1d`` holds, every symbol in the lake is recomputed
(:mod:`marketlake.pipeline.indicator_state`).
"""

from __future__ import annotations

from collections.abc import Sequence

from marketlake.analytics.indicator_config import configured_indicators
from marketlake.catalogue import ADJUSTMENT_FACTORS, BARS_1D, MISSING_SESSIONS, RETIRED_LAKE_TABLES
from marketlake.components import open_engine
from marketlake.engines.base import Engine, EngineJob, EngineResult, ExpectedSessions
from marketlake.pipeline import indicator_state
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.pending import clear, read_pending
from marketlake.pipeline.plan import FILE_SOURCES
from marketlake.pipeline.result import StageResult
from marketlake.symbols import Symbol, parse_symbols


def _without_derived(ctx: RunContext, symbols: Sequence[str]) -> set[str]:
    """Those of ``symbols`` with no derived rows in the lake yet: no adjustment factors (every
    symbol with bars has a span of them once processed; a lake an older version wrote has
    none)."""
    if not ctx.tables.exists(ADJUSTMENT_FACTORS):
        return set(symbols)
    counts = ctx.tables.symbol_counts(ADJUSTMENT_FACTORS, symbols)
    return {symbol for symbol in symbols if not counts.get(symbol)}


def _remove_retired(ctx: RunContext) -> list[str]:
    """Delete the lake tables an older version wrote and none updates any more
    (:data:`~marketlake.catalogue.RETIRED_LAKE_TABLES`); return those deleted."""
    removed = [name for name in RETIRED_LAKE_TABLES if ctx.storage.exists(name)]
    for name in removed:
        ctx.storage.delete(name)
    return removed


def process(ctx: RunContext) -> StageResult:
    """Adjust the run's symbols with anything new, compute their analytics and missing
    sessions, and write them."""
    result = StageResult()
    removed = _remove_retired(ctx)
    if removed:
        result.detail["retired_tables_removed"] = removed
    if not ctx.tables.exists(BARS_1D):
        result.detail["note"] = "no bars in the lake"
        return result
    indicators = configured_indicators(ctx.settings.indicators)
    others: list[Symbol] = []
    if indicator_state.needs_rebuild(ctx.tables, indicators):
        everything = indicator_state.start_rebuild(ctx.tables, indicators)
        others = parse_symbols(sorted(set(everything) - set(ctx.symbols)))
        result.detail["indicators_rebuilt"] = len(everything)
    pending = read_pending(ctx.storage)
    fresh = _without_derived(ctx, ctx.symbols)
    rebuilding = "indicators_rebuilt" in result.detail
    todo = [s for s in ctx.symbols if rebuilding or s in pending.symbols or s in fresh]
    unchanged = len(ctx.symbols) - len(todo)
    result.detail.update(
        symbols_processed=len(todo),
        symbols_unchanged=unchanged,
        summary=f"{len(todo)} symbols recomputed, {unchanged} unchanged",
    )
    if removed:
        result.detail["summary"] += f"; retired lake tables removed: {', '.join(removed)}"
    if rebuilding:
        result.detail["summary"] += (
            f"; indicator set changed: indicators_1d rebuilt for all {len(todo) + len(others)} "
            "symbols"
        )
    if not todo and not others:  # nothing new: the derived rows in the lake stand as they are
        if rebuilding:  # a lake without symbols: nothing to recompute
            indicator_state.record(ctx.storage, indicators)
        return result
    start, end = ctx.session_range
    expected = ExpectedSessions(
        calendar=ctx.settings.calendar,
        start=start,
        end=end,
        to_last_bar=ctx.settings.source in FILE_SOURCES and ctx.settings.end is None,
    )
    job = EngineJob(
        tables=ctx.tables,
        symbols=tuple(todo),
        now=ctx.now,
        expected=expected,
        progress=lambda done, total: ctx.progress("process", done, total),
        handover=ctx.handover,
        bucket_rows=ctx.settings.runner.bucket_rows,
        indicators=indicators,
        appended=frozenset() if rebuilding else frozenset(pending.appended - fresh),
    )
    engine = open_engine(ctx.settings)
    try:
        outcome = _run(engine, job, others)
        details = engine.details()
    finally:
        engine.close()
    indicator_state.record(ctx.storage, indicators)
    clear(ctx.storage, pending, todo)
    result.rows_in = outcome.rows_in
    result.rows_out = outcome.rows_out - outcome.written.get(MISSING_SESSIONS.name, 0)
    result.detail["missing_sessions"] = outcome.written.get(MISSING_SESSIONS.name, 0)
    result.detail["engine"] = engine.name
    result.detail.update(details)
    return result


def _run(engine: Engine, job: EngineJob, others: Sequence[Symbol]) -> EngineResult:
    """The job, then (on an indicator set change) the lake's other symbols, whose missing
    sessions are left alone."""
    from dataclasses import replace

    outcome = engine.process(job) if job.symbols else EngineResult()
    if others:
        rest = engine.process(replace(job, symbols=tuple(others), expected=None, handover=None))
        outcome.rows_in += rest.rows_in
        outcome.symbols += rest.symbols
        for name, rows in rest.written.items():
            outcome.written[name] = outcome.written.get(name, 0) + rows
    return outcome
