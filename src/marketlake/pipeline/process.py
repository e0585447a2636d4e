"""The ``process`` stage: the run's engine computes the derived datasets from the lake.

A symbol's derived rows are recomputed from its whole curated history, so a new split or
dividend rebuilds the affected history instead of patching it. Only the run's symbols that
brought anything new (marked by the lake writer, :mod:`marketlake.pipeline.pending`) or have
no derived rows yet are recomputed: a re-run with nothing new rewrites nothing. The engine
takes the curated rows ``consume_history`` handed over in this process, when it can, instead
of reading them back; run alone, the stage reads the lake.
"""

from __future__ import annotations

from collections.abc import Sequence

from marketlake.catalogue import BARS_1D, BARS_1D_ADJUSTED, MISSING_SESSIONS
from marketlake.components import open_engine
from marketlake.engines.base import EngineJob, ExpectedSessions
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.pending import clear, read_pending
from marketlake.pipeline.plan import FILE_SOURCES
from marketlake.pipeline.result import StageResult


def _without_derived(ctx: RunContext, symbols: Sequence[str]) -> set[str]:
    """Those of ``symbols`` with no derived rows in the lake yet."""
    if not ctx.tables.exists(BARS_1D_ADJUSTED):
        return set(symbols)
    counts = ctx.tables.symbol_counts(BARS_1D_ADJUSTED, symbols)
    return {symbol for symbol in symbols if not counts.get(symbol)}


def process(ctx: RunContext) -> StageResult:
    """Adjust the run's symbols with anything new, compute their analytics and missing
    sessions, and write them."""
    result = StageResult()
    if not ctx.tables.exists(BARS_1D):
        result.detail["note"] = "no bars in the lake"
        return result
    pending = read_pending(ctx.storage)
    fresh = _without_derived(ctx, ctx.symbols)
    todo = [s for s in ctx.symbols if s in pending.symbols or s in fresh]
    unchanged = len(ctx.symbols) - len(todo)
    result.detail.update(
        symbols_processed=len(todo),
        symbols_unchanged=unchanged,
        summary=f"{len(todo)} symbols recomputed, {unchanged} unchanged",
    )
    if not todo:  # nothing new: the derived rows in the lake stand as they are
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
    )
    engine = open_engine(ctx.settings)
    try:
        outcome = engine.process(job)
    finally:
        engine.close()
    clear(ctx.storage, pending, todo)
    result.rows_in = outcome.rows_in
    result.rows_out = outcome.rows_out - outcome.written.get(MISSING_SESSIONS.name, 0)
    result.detail["missing_sessions"] = outcome.written.get(MISSING_SESSIONS.name, 0)
    result.detail["engine"] = engine.name
    return result
