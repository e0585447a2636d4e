"""The Polars engine: the whole job in this process, with Polars and numpy kernels."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa

from marketlake.catalogue import BARS_1D_ADJUSTED, DAILY_METRICS, INDICATORS_1D, MISSING_SESSIONS
from marketlake.engines.base import Engine, EngineJob, EngineResult, ExpectedSessions
from marketlake.engines.lake_io import present_symbols, read_inputs, write_output
from marketlake.schemas import MISSING_SESSION_SCHEMA


class PolarsEngine(Engine):
    """Reads the job's symbols, adjusts them, computes analytics and writes them, in process."""

    name = "local"

    def process(self, job: EngineJob) -> EngineResult:
        """Compute and write the derived datasets of ``job``."""
        from marketlake.analytics.adjust import adjust_table
        from marketlake.analytics.partition import analyse_partition, split_analytics

        bars, actions = read_inputs(job)
        result = EngineResult(rows_in=bars.num_rows, symbols=present_symbols(job, bars))
        steps = 5 if job.expected is not None else 4
        job.progress(1, steps)
        adjusted = adjust_table(bars, actions)
        metrics, indicators = split_analytics(analyse_partition(adjusted))
        job.progress(2, steps)
        for done, (dataset, table) in enumerate(
            ((BARS_1D_ADJUSTED, adjusted), (DAILY_METRICS, metrics), (INDICATORS_1D, indicators)),
            3,
        ):
            result.written[dataset.name] = write_output(job, dataset, table, result.symbols)
            job.progress(min(done, steps), steps)
        if job.expected is not None:
            missing = missing_sessions(bars, job.expected, job.now)
            written = write_output(job, MISSING_SESSIONS, missing, result.symbols)
            result.written[MISSING_SESSIONS.name] = written
            job.progress(steps, steps)
        return result


def missing_sessions(bars: pa.Table, expected: ExpectedSessions, now: datetime) -> pa.Table:
    """Expected sessions with no curated bar, per symbol (``MISSING_SESSION_SCHEMA``).

    A symbol is expected from its first bar (a listing date), not before ``expected.start``,
    to ``expected.end``, or to its last bar when ``expected.to_last_bar``.
    """
    import polars as pl

    from marketlake.calendar import get_sessions
    from marketlake.quality.completeness import missing_sessions as find_missing

    if bars.num_rows == 0:
        return MISSING_SESSION_SCHEMA.empty_table()
    cal = get_sessions(expected.calendar)
    start, end = max(expected.start, cal.first), min(expected.end, cal.last)
    frame = pl.from_arrow(bars.select(["symbol", "ts", "source"]))
    assert isinstance(frame, pl.DataFrame)
    frame = frame.sort("symbol", "ts")
    day = pl.col("ts").dt.date()
    spans = frame.group_by("symbol").agg(
        pl.max_horizontal(day.min(), pl.lit(start)).alias("first"),
        (day.max() if expected.to_last_bar else pl.lit(end)).alias("last"),
        pl.col("source").last(),
    )
    spans = spans.with_columns(pl.min_horizontal("last", pl.lit(end)).alias("last")).sort("symbol")
    found = find_missing(spans, frame.select("symbol", "ts"), cal.session_array(start, end))
    missing = pl.from_arrow(found)
    assert isinstance(missing, pl.DataFrame)
    stamp = np.datetime64(now.replace(tzinfo=None), "us")
    out = missing.join(spans.select("symbol", "source"), on="symbol", how="left").select(
        "symbol",
        "ts",
        "source",
        pl.lit(stamp).cast(pl.Datetime("us", "UTC")).alias("detected_at"),
    )
    return out.sort("symbol", "ts").to_arrow().cast(MISSING_SESSION_SCHEMA)
