"""The ``process`` stage: the run's engine computes the derived datasets from the lake.

Everything is recomputed from the curated tables for the run's symbols, so a new split or
dividend rebuilds the affected history instead of patching it. The engine takes the curated
rows ``consume_history`` handed over in this process, when it can, instead of reading them
back; run alone, the stage reads the lake.
"""

from __future__ import annotations

from marketlake.catalogue import BARS_1D, MISSING_SESSIONS
from marketlake.components import open_engine
from marketlake.engines.base import EngineJob, ExpectedSessions
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.plan import FILE_SOURCES
from marketlake.pipeline.result import StageResult


def process(ctx: RunContext) -> StageResult:
    """Adjust the run's symbols, compute analytics and missing sessions, and write them."""
    result = StageResult()
    if not ctx.tables.exists(BARS_1D):
        result.detail["note"] = "no bars in the lake"
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
        symbols=tuple(ctx.symbols),
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
    result.rows_in = outcome.rows_in
    result.rows_out = outcome.rows_out - outcome.written.get(MISSING_SESSIONS.name, 0)
    result.detail["missing_sessions"] = outcome.written.get(MISSING_SESSIONS.name, 0)
    result.detail["engine"] = engine.name
    return result
