"""The lake writer: chunks of history messages validated, reconciled and merged.

A chunk holds every message of some symbols (see :mod:`marketlake.pipeline.chunks`). Its
corporate actions are validated and merged and its bars checked by the feed rules first; then
its bars, origin by origin in the order they arrived: each origin's bars are reconciled with
what the lake holds (:mod:`marketlake.pipeline.reconcile`) and validated (:func:`check_chunk`).
The findings and good bars are then merged, then the fetch log and the quarantine rows
(:mod:`marketlake.pipeline.chunk_writes`), on a thread of their own while the next chunk is
checked (:class:`LakeWriter`).
"""

from __future__ import annotations

from concurrent.futures import Future, wait

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import BARS_1D, CORPORATE_ACTIONS, QUARANTINE
from marketlake.pipeline.chunk_writes import BarWrite, ChunkWrites, concat_as
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.result import StageResult
from marketlake.rows import deduplicate
from marketlake.schemas import BAR_KEYS, BAR_SCHEMA, CORPORATE_ACTION_SCHEMA


def _drop_redeliveries(
    table: pa.Table, schema: pa.Schema, keys: tuple[str, ...] | None = None
) -> pa.Table:
    """Collapse rows that are the same record delivered twice (only ``ingested_at`` differs).

    A re-run after a kill re-publishes what an earlier attempt already sent; those copies
    are not data problems. Rows that differ in any value stay, for validation to judge.
    With ``keys``, the rows come back sorted by them, and a table whose keys do not repeat
    (the usual case) skips the search for copies.
    """
    import polars as pl

    from marketlake.pipeline.chunks import sorted_unique_keys

    if table.num_rows == 0:
        return table
    if keys is not None:
        table, keys_unique = sorted_unique_keys(table, keys)
        if keys_unique:
            return table
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    value_columns = [c for c in schema.names if c != "ingested_at"]
    unique = frame.unique(subset=value_columns, keep="last", maintain_order=True)
    return unique.to_arrow().cast(schema)


def _stored_bars(ctx: RunContext, symbols: list[str]) -> pa.Table | None:
    """Every stored bar of the chunk's symbols (None when there are none): from the
    handover when this process wrote them last, else from the lake."""
    if not symbols:
        return None
    stored = ctx.handover.take(BARS_1D, symbols)
    if stored is None:
        if not ctx.tables.exists(BARS_1D):
            return None
        stored = ctx.tables.read_symbols(BARS_1D, symbols)
    return stored.select(BAR_SCHEMA.names).cast(BAR_SCHEMA) if stored.num_rows else None


def _previous_bars(stored: pa.Table | None, bars: pa.Table) -> pa.Table | None:
    """The last stored bar of each symbol before this chunk's first bar, for jump checks."""
    import polars as pl

    if stored is None or bars.num_rows == 0:
        return None
    chunk = pl.from_arrow(bars.select(["symbol", "ts"]))
    assert isinstance(chunk, pl.DataFrame)
    firsts = chunk.group_by("symbol").agg(pl.col("ts").min().alias("first_ts"))
    frame = pl.from_arrow(stored)
    assert isinstance(frame, pl.DataFrame)
    # each symbol's latest bar before its first in the chunk, by a window maximum (no sort of
    # the symbols' whole stored history); of equal keys the last, as a stable sort gave
    previous = (
        frame.join(firsts, on="symbol")
        .filter(pl.col("ts") < pl.col("first_ts"))
        .filter(pl.col("ts") == pl.col("ts").max().over("symbol"))
        .unique(subset=["symbol"], keep="last", maintain_order=True)
        .sort("symbol")
        .drop("first_ts")
    )
    return previous.to_arrow().cast(BAR_SCHEMA) if previous.height else None


def _count(result: StageResult, counts: dict[str, int]) -> None:
    for rule, count in counts.items():
        result.detail[rule] = result.detail.get(rule, 0) + count


def _by_origin(bars: pa.Table, origins: list[str]) -> list[pa.Table]:
    """``bars`` split by origin (``source``), in the order of ``origins``."""
    if len(origins) < 2:
        return [bars]
    column = bars.column("source")
    return [bars.filter(pc.equal(column, origin)) for origin in origins]


class LakeWriter:
    """Writes chunks in order, committing each checked chunk's bars, fetch log and quarantine
    rows on a background thread while the next chunk is checked (:func:`check_chunk`).

    The checks of a chunk, Polars and NumPy, and the Delta commits of the one before it,
    delta-rs's, run on two cores: the lake writer kept one busy. Commits stay in chunk order,
    one at a time, and a chunk that names a symbol of the chunk being committed is checked
    only once that commit is in, so each chunk is checked against the lake as it would be
    without the overlap. Use it as a context manager: leaving it waits for the last commit.
    """

    def __init__(self, ctx: RunContext, result: StageResult) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._ctx, self._result = ctx, result
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="marketlake-lake")
        self._pending: Future[None] | None = None
        self._symbols: set[str] = set()

    def __enter__(self) -> LakeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.wait()
            elif self._pending is not None:  # no write outlives the stage; its error is moot
                wait([self._pending])
        finally:
            self._pool.shutdown(wait=True)

    def write(self, tables: dict[str, list[pa.Table]]) -> None:
        """Check the chunk ``tables``, then start committing it once the chunk before is in."""
        symbols = chunk_symbols(tables)
        if self._pending is not None and symbols & self._symbols:
            self.wait()
        writes = check_chunk(self._ctx, tables, self._result)
        self.wait()
        self._symbols = symbols
        self._pending = self._pool.submit(writes.commit, self._ctx, self._result)

    def wait(self) -> None:
        """Wait until every chunk written so far is committed (raise the commit's error)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()


def chunk_symbols(tables: dict[str, list[pa.Table]]) -> set[str]:
    """The symbols a chunk's bars, corporate actions and fetch-log rows name."""
    names: set[str] = set()
    for dataset in ("bars_1d", "corporate_actions", "fetch_log"):
        for table in tables.get(dataset, []):
            if table.num_rows:
                names.update(pc.unique(table.column("symbol")).to_pylist())
    return names


def check_chunk(
    ctx: RunContext, tables: dict[str, list[pa.Table]], result: StageResult
) -> ChunkWrites:
    """Validate one chunk and merge its corporate actions; return the rest of its writes.

    The bars of each origin are reconciled and validated against the bars stored before
    them and those of the origins before (in memory), so the writes of a checked chunk need
    no lake read: a lake writer may commit them while it checks the next chunk.
    """
    from marketlake.pipeline.completeness import settle_log
    from marketlake.pipeline.curated_actions import marked, read_actions, store_actions
    from marketlake.pipeline.feed_checks import check_feed_actions, check_feed_bars
    from marketlake.pipeline.pending import mark, mark_changed
    from marketlake.quality.bars import validate_actions
    from marketlake.schemas import (
        CURATED_ACTION_SCHEMA,
        FETCH_LOG_SCHEMA,
        QUARANTINE_SCHEMA,
    )

    arrived = concat_as(tables["bars_1d"], BAR_SCHEMA).combine_chunks()
    origins = pc.unique(arrived.column("source")).to_pylist() if arrived.num_rows else []
    bars = _drop_redeliveries(arrived, BAR_SCHEMA, BAR_KEYS)
    actions = _drop_redeliveries(
        concat_as(tables["corporate_actions"], CORPORATE_ACTION_SCHEMA), CORPORATE_ACTION_SCHEMA
    )
    # conform: a message an older version published lacks the quarantine's newer columns
    rejects = [concat_as([QUARANTINE.conform(t) for t in tables["quarantine"]], QUARANTINE_SCHEMA)]
    result.rows_in += bars.num_rows + actions.num_rows
    bar_symbols = pc.unique(bars.column("symbol")).to_pylist() if bars.num_rows else []
    stored = _stored_bars(ctx, bar_symbols)
    previous = _previous_bars(stored, bars)
    mark_changed(ctx, tables.get("fetch_log", []), bars, stored, actions)

    good_actions, bad_actions = validate_actions(actions)
    rejects.append(bad_actions)
    feed_actions = check_feed_actions(good_actions.cast(CORPORATE_ACTION_SCHEMA), bars, previous)
    good_actions = feed_actions.kept
    rejects.append(feed_actions.rejects)
    ctx.handover.discard(CORPORATE_ACTIONS, store_actions(ctx.tables, marked(good_actions, False)))
    known_actions = (
        read_actions(ctx.tables, bar_symbols)
        if bars.num_rows
        else CURATED_ACTION_SCHEMA.empty_table()
    )

    feed_bars = check_feed_bars(bars, known_actions, previous)
    rejects.append(feed_bars.rejects)
    if feed_bars.inferred.num_rows:
        inferred = marked(feed_bars.inferred, inferred=True)
        # a split changes every earlier adjusted row: whole recomputes, whatever marked above
        mark(ctx.storage, ctx.run_id, pc.unique(inferred.column("symbol")).to_pylist())
        store_actions(ctx.tables, inferred)
        known_actions = pa.concat_tables([known_actions, inferred])
        result.detail["inferred_splits"] = (
            result.detail.get("inferred_splits", 0) + inferred.num_rows
        )
    if bars.num_rows:
        at = ctx.tables.last_commit(CORPORATE_ACTIONS)
        ctx.handover.put(CORPORATE_ACTIONS, known_actions, bar_symbols, at)
    writes: list[BarWrite] = []
    for layer in _by_origin(feed_bars.kept, origins):
        write = _check_bars(ctx, layer, stored, known_actions, bar_symbols, rejects, result)
        writes.append(write)
        stored = write.held if write.held.num_rows else None
    log = concat_as(tables.get("fetch_log", []), FETCH_LOG_SCHEMA)
    all_rejects = pa.concat_tables([r.cast(QUARANTINE_SCHEMA) for r in rejects])
    result.rows_out += good_actions.num_rows
    result.quarantined += all_rejects.num_rows
    _count(result, feed_actions.counts)
    _count(result, feed_bars.counts)
    return ChunkWrites(
        bars=writes,
        log=settle_log(ctx, log, stored) if log.num_rows else log,
        rejects=all_rejects,
        good_actions=good_actions,
    )


def _check_bars(
    ctx: RunContext,
    bars: pa.Table,
    stored: pa.Table | None,
    known_actions: pa.Table,
    symbols: list[str],
    rejects: list[pa.Table],
    result: StageResult,
) -> BarWrite:
    """Reconcile ``bars`` (of one origin) with the ``stored`` bars of ``symbols`` and validate
    them; return the writes of the findings and the good bars, with what the lake then holds
    for ``symbols``. Quarantine rows are appended to ``rejects``.

    Validation judges each remaining bar against its real neighbour among the stored bars,
    so the stored bars kept in place of contradicting ones are its context.
    """
    from marketlake.pipeline.chunks import after_merge
    from marketlake.pipeline.reconcile import (
        SOURCE_CONFLICT,
        max_source_diff,
        on_conflict,
        reconcile_bars,
    )
    from marketlake.quality.bars import validate_bars

    policy = on_conflict(ctx.settings)
    reconciled = reconcile_bars(
        bars, stored, max_source_diff(ctx.settings), ctx.now, policy, known_actions
    )
    rejects.append(reconciled.rejects)
    checked = validate_bars(
        reconciled.bars,
        known_actions,
        sessions=ctx.calendar.days,
        max_daily_jump=ctx.settings.validation.max_daily_jump,
        max_volume=ctx.settings.validation.max_volume,
        previous=stored,
        now=ctx.now,
        find_missing=False,  # completeness is the re-fetch's and process's (missing_sessions)
    )
    rejects.append(checked.rejects)
    good = deduplicate(checked.bars.cast(BAR_SCHEMA), BAR_KEYS)
    flagged = reconciled.settled(good)
    result.rows_out += checked.bars.num_rows
    _count(result, checked.counts)
    if reconciled.rejects.num_rows:
        _count(result, {SOURCE_CONFLICT: reconciled.rejects.num_rows})
    _count(
        result,
        {
            "reconciled": reconciled.compared,
            "reconciliation_flags": flagged.num_rows,
            "conflicting_bars": reconciled.conflicting,
        },
    )
    held = after_merge(stored, good, BAR_KEYS)
    return BarWrite(symbols, flagged, good, stored, held)
