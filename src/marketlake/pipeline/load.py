"""The ``load_warehouse`` stage: the lake's tables for the run's symbols into the warehouse.

The run's symbols are loaded bucket by bucket (about ``runner.bucket_rows`` bars each, in
sorted order), so memory is bounded by a bucket. Each table's rows of a bucket's symbols are
replaced in one transaction, so a re-run (or a run killed half way and re-run) leaves every
row exactly once. A bucket's tables are written side by side where the warehouse can
(``Capabilities.parallel_writes``: DuckDB runs an INSERT on one thread), and the bucket's
load marks once all of them are in. Rows the earlier stages of this process handed over are
taken from memory; the rest are read from the lake, skipping files that hold none of the
bucket's symbols. A
symbol's rows that the warehouse holds as the lake does are not loaded again, and of a
symbol the warehouse holds as an older version of a lake table that has only gained files
since, only the rows of those files are upserted (see :mod:`marketlake.pipeline.load_marks`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from itertools import groupby
from threading import BoundedSemaphore
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import (
    BARS_1D,
    BATCH_LOADS,
    INDICATORS_1D,
    QUARANTINE,
    SESSIONS,
    SYMBOLS,
    Dataset,
)
from marketlake.pipeline import indicator_state
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.load_marks import LoadMarks
from marketlake.pipeline.result import StageResult
from marketlake.prefetch import prefetched
from marketlake.schemas import UTC_US
from marketlake.warehouse.base import SYMBOLS_PER_QUERY, Warehouse

if TYPE_CHECKING:
    from marketlake.lake.tables import TableState


def load_warehouse(ctx: RunContext) -> StageResult:
    """Load bars, actions, analytics, missing sessions, reconciliation flags, quarantine,
    symbols and sessions into the warehouse."""
    result = StageResult()
    with ctx.warehouse.bulk_load():
        _load(ctx, result)
    return result


def _load(ctx: RunContext, result: StageResult) -> None:
    from marketlake.lake.quarantine import current_count, read_quarantine
    from marketlake.lake.symbol_reads import bucket_symbols

    warehouse = ctx.warehouse
    if indicator_state.reload_pending(ctx.storage):
        result.detail["indicators_reloaded"] = _reload_indicators(ctx)
    present = [d for d in BATCH_LOADS if ctx.tables.exists(d)]
    states = {d.name: ctx.tables.state(d) for d in present}
    marks = LoadMarks.read(warehouse)
    loaded = {d.name: marks.loaded_as(warehouse, d, states[d.name], ctx.symbols) for d in present}
    unchanged = {
        name: {s for s, (state, _) in held.items() if state == states[name]}
        for name, held in loaded.items()
    }
    counts = _bar_counts(ctx) if BARS_1D in present else {}
    work = bucket_symbols(
        {symbol: counts.get(symbol, 0) for symbol in ctx.symbols}, ctx.settings.runner.bucket_rows
    )
    spans: list[pa.Table] = []
    grown: list[str] = []
    added = 0  # symbols x tables loaded by the rows the lake added since their mark
    still = 0  # symbols x tables read since their mark and found with no rows added
    steps = [
        (done, dataset, part)
        for done, bucket in enumerate(work, 1)
        for dataset in present
        for part in _parts(bucket, unchanged[dataset.name], loaded[dataset.name])
    ]
    reads = prefetched(_read(ctx, dataset, part, states) for _, dataset, part in steps)
    with closing(reads), _Writes(warehouse) as writes:
        for done, bucket in groupby(steps, key=lambda step: step[0]):
            started: list[Future[int]] = []
            for _, dataset, _ in bucket:
                for load in next(reads):  # each written while the next is read
                    started.append(writes.submit(partial(_write, warehouse, dataset, load)))
                    data, symbols, state, before = load
                    if before is None:
                        if dataset is BARS_1D and data.num_rows:
                            spans.append(_symbols(data))
                    else:
                        gained = len(pc.unique(data.column("symbol"))) if data.num_rows else 0
                        added += gained
                        still += len(symbols) - gained
                        if dataset is BARS_1D:
                            grown += symbols
                    result.rows_in += data.num_rows
                    if state is not None:  # written with the bucket's, once its loads are
                        marks.record(
                            warehouse, dataset, state, symbols, data, ctx.now, before, hold=True
                        )
            result.rows_out += sum(writes.settle(started))
            marks.write(warehouse)  # after the bucket's loads: its marks, in one write
            ctx.progress("load_warehouse", done, len(work) + 1)
    marks.write(warehouse)
    if grown:
        spans.append(_stored_symbols(warehouse, grown))
    skipped = sum(len(symbols) for symbols in unchanged.values())
    result.detail["unchanged_skipped"] = skipped
    result.detail["added_rows_only"] = added
    result.detail["no_rows_added"] = still
    total = len(ctx.symbols) * len(present)
    grew = f" ({added} of them by the rows the lake added since)" if added else ""
    result.detail["summary"] = (
        f"{len(ctx.symbols)} symbols x {len(present)} tables: {total - skipped - still} "
        f"loaded{grew}, {skipped + still} unchanged since their last load"
    )
    quarantine = read_quarantine(ctx.tables)
    if quarantine.num_rows:
        warehouse.upsert(QUARANTINE.name, quarantine)
    result.quarantined = current_count(quarantine)
    if spans:
        symbols = pa.concat_tables(spans)
        warehouse.upsert(SYMBOLS.name, symbols)
        warehouse.upsert(SESSIONS.name, _sessions(ctx, symbols))
    ctx.progress("load_warehouse", len(work) + 1, len(work) + 1)


def _write(warehouse: Warehouse, dataset: Dataset, load: _Load) -> int:
    """Write one load (see :func:`_read`) to the warehouse; return the rows written."""
    data, symbols, _, before = load
    if before is None:  # the symbols' every row: replaced
        return warehouse.replace_where(dataset.name, data, symbols)
    return warehouse.upsert(dataset.name, data) if data.num_rows else 0


class _Writes:
    """Runs a bucket's writes side by side when the warehouse can
    (:attr:`~marketlake.warehouse.base.Capabilities.parallel_writes`), else in turn.

    The writes of one bucket run together and all end before the next bucket's begin, so a
    bucket's marks are written once its tables are, and an embedded warehouse file can be
    let go between buckets to a process that asked for it.
    """

    def __init__(self, warehouse: Warehouse) -> None:
        workers = warehouse.capabilities.parallel_writes
        self._pool = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="marketlake-load")
            if workers > 1
            else None
        )
        self._slots = BoundedSemaphore(workers)

    def __enter__(self) -> _Writes:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, write: Callable[[], int]) -> Future[int]:
        """Start ``write`` once a worker is free (in turn: run it now). The rows of a write
        waiting for a worker would be held in memory beside those being written, so the
        caller reads the next write's rows only when one can start."""
        if self._pool is None:
            done: Future[int] = Future()
            done.set_result(write())
            return done
        self._slots.acquire()
        future = self._pool.submit(write)
        future.add_done_callback(lambda _: self._slots.release())
        return future

    @staticmethod
    def settle(futures: list[Future[int]]) -> list[int]:
        """The results of ``futures``, in order, once all have ended (the first error in
        order raised then)."""
        wait(futures)
        return [future.result() for future in futures]


def _reload_indicators(ctx: RunContext) -> int:
    """Recreate the warehouse's ``indicators_1d`` with the configured columns and load every
    symbol's rows (after an indicator set change); return the rows loaded."""
    from marketlake.analytics.indicator_config import configured_indicators
    from marketlake.lake.symbol_reads import bucket_symbols

    configured_indicators(ctx.settings.indicators)
    indicator_state.recreate_table(ctx.warehouse)
    loaded = 0
    if ctx.tables.exists(INDICATORS_1D):
        names = ctx.tables.read(INDICATORS_1D, columns=["symbol"]).column("symbol")
        counts = pc.value_counts(names).to_pylist()
        every = {str(row["values"]): int(row["counts"]) for row in counts}
        for bucket in bucket_symbols(every, ctx.settings.runner.bucket_rows):
            data = ctx.tables.read_symbols(INDICATORS_1D, bucket)
            loaded += ctx.warehouse.replace_where(INDICATORS_1D.name, data, bucket)
    indicator_state.reload_done(ctx.storage)
    return loaded


def _bar_counts(ctx: RunContext) -> dict[str, int]:
    held = ctx.handover.counts(BARS_1D, ctx.symbols)
    return held if held is not None else ctx.tables.symbol_counts(BARS_1D, ctx.symbols)


@dataclass(frozen=True)
class _Part:
    """Symbols of a bucket loaded together: whole, or (``since`` a marked lake state) by the
    rows the lake table gained since."""

    symbols: list[str]
    since: TableState | None = None
    before: dict[str, int] = field(default_factory=dict)
    """Rows per symbol the warehouse holds as of ``since``."""


def _parts(
    bucket: list[str], unchanged: set[str], loaded: dict[str, tuple[TableState, int]]
) -> list[_Part]:
    """The loads of one bucket of one dataset: the symbols loaded whole, then one part per
    older state the warehouse holds some of them as."""
    whole = [s for s in bucket if s not in unchanged and s not in loaded]
    older: dict[TableState, dict[str, int]] = {}
    for symbol in bucket:
        if symbol in loaded and symbol not in unchanged:
            since, rows = loaded[symbol]
            older.setdefault(since, {})[symbol] = rows
    parts = [_Part(whole)] if whole else []
    for since, before in sorted(older.items(), key=lambda item: item[0].version):
        parts.append(_Part(list(before), since, before))
    return parts


_Load = tuple[pa.Table, list[str], "TableState | None", "dict[str, int] | None"]


def _read(
    ctx: RunContext, dataset: Dataset, part: _Part, states: dict[str, TableState]
) -> list[_Load]:
    """The loads of ``part``: rows, their symbols, the state of the lake table they are rows
    of (None: handed over, and some other writer may have committed since) and, for rows
    added since a marked state, the rows per symbol the warehouse holds already (else None:
    the rows are the symbols' every row).

    Rows added since ``part.since`` are read from the lake for the symbols whose rows of then
    are all still there (see :meth:`~marketlake.lake.tables.LakeTables.read_symbols_added`);
    the others are read whole, from the handover when it holds them.
    """
    state = states[dataset.name]
    loads: list[_Load] = []
    whole = part.symbols
    if part.since is not None:
        added, kept = ctx.tables.read_symbols_added(dataset, whole, part.since, state)
        if kept:
            loads.append((added, kept, state, {s: part.before[s] for s in kept}))
            whole = [s for s in whole if s not in set(kept)]
    if whole:
        held = ctx.handover.take(dataset, whole)
        if held is not None:
            at = ctx.handover.held_at(dataset, whole)
            mine = at is not None and ctx.tables.only_own_since(dataset, at, state)
            loads.append((held, whole, state if mine else None, None))
        else:
            rows = ctx.tables.read_symbols(dataset, whole, version=state.version)
            loads.append((rows, whole, state, None))
    return loads


def _stored_symbols(warehouse: Warehouse, symbols: list[str]) -> pa.Table:
    """The ``symbols`` rows of the warehouse's ``bars_1d`` summarised as :func:`_symbols`
    summarises loaded bars (for symbols loaded by their added rows only)."""
    parts = []
    table = warehouse.quote(BARS_1D.name)
    mark = warehouse.capabilities.placeholder
    for lo in range(0, len(symbols), SYMBOLS_PER_QUERY):
        chunk = symbols[lo : lo + SYMBOLS_PER_QUERY]
        parts.append(
            warehouse.query(
                "SELECT symbol, max(source) AS source, min(ts) AS first_ts, "
                f"max(ts) AS last_ts, count(*) AS bars FROM {table} "
                f"WHERE symbol IN ({', '.join(mark for _ in chunk)}) GROUP BY symbol",
                chunk,
            )
        )
    return pa.concat_tables(parts).cast(SYMBOLS.schema)


def _symbols(bars: pa.Table) -> pa.Table:
    """Per symbol of ``bars``: its source (the greatest), first and last ``ts`` and bars.

    Polars groups them: pyarrow's ``group_by`` would import its query engine (``acero`` and
    ``dataset``, about 16 ms of a run's start-up) for this one aggregation."""
    import polars as pl

    frame = pl.from_arrow(bars.select(["symbol", "source", "ts"]))
    assert isinstance(frame, pl.DataFrame)
    grouped = frame.group_by("symbol").agg(
        pl.col("source").max(),
        pl.col("ts").min().alias("first_ts"),
        pl.col("ts").max().alias("last_ts"),
        pl.len().cast(pl.Int64).alias("bars"),
    )
    return grouped.to_arrow().cast(SYMBOLS.schema)


def _sessions(ctx: RunContext, symbols: pa.Table) -> pa.Table:
    """The sessions from the first to the last bar of the loaded ``symbols`` rows."""
    first = pc.min(symbols.column("first_ts")).as_py().date()
    last = pc.max(symbols.column("last_ts")).as_py().date()
    cal = ctx.calendar
    lo = max(first, cal.first)
    hi = min(last, cal.last)
    days = cal.session_array(lo, hi)
    index = cal.days.searchsorted(days)
    return pa.table(
        {
            "calendar": pa.array([cal.name] * len(days), pa.string()),
            "ts": pa.array(days.astype("datetime64[us]").astype("int64"), pa.int64()).cast(UTC_US),
            "open_at": pa.array(cal.opens[index].astype("int64"), pa.int64()).cast(UTC_US),
            "close_at": pa.array(cal.closes[index].astype("int64"), pa.int64()).cast(UTC_US),
        }
    )
