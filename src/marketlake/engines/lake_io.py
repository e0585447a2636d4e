"""Lake reads and writes every engine shares: the job's curated inputs, the derived outputs.

Inputs come from the job's handover when it holds them (the previous stage of the same
process committed them) and from the lake otherwise; both give the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import (
    ADJUSTMENT_FACTORS,
    BARS_1D,
    BATCH_LOADS,
    CORPORATE_ACTIONS,
    DAILY_METRICS,
    INDICATORS_1D,
    Dataset,
)
from marketlake.schemas import CORPORATE_ACTION_SCHEMA

if TYPE_CHECKING:
    from concurrent.futures import Future

    from marketlake.engines.base import EngineJob
    from marketlake.lake.tables import LakeTables


def plain_strings(table: pa.Table) -> pa.Table:
    """Cast Polars' ``string_view`` columns to plain ``string`` so lake files agree on types."""
    fields = [
        pa.field(f.name, pa.string(), f.nullable) if pa.types.is_string_view(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


def _from_handover(job: EngineJob) -> bool:
    """True when the job reads current versions, so handed-over rows are what it wants."""
    return job.handover is not None and job.bars_version is None and job.actions_version is None


def bar_counts(job: EngineJob) -> dict[str, int]:
    """Curated bars per symbol of the job (symbols without bars left out)."""
    tables = job.tables
    if _from_handover(job):
        assert job.handover is not None
        held = job.handover.counts(BARS_1D, job.symbols)
        if held is not None:
            return held
    if not tables.exists(BARS_1D):
        return {}
    return tables.symbol_counts(BARS_1D, job.symbols, version=job.bars_version)


def read_bucket(job: EngineJob, symbols: list[str]) -> tuple[pa.Table, pa.Table]:
    """The curated bars and corporate actions of ``symbols``, at the job's snapshot."""
    tables = job.tables
    bars = actions = None
    if _from_handover(job):
        assert job.handover is not None
        bars = job.handover.take(BARS_1D, symbols)
        actions = job.handover.take(CORPORATE_ACTIONS, symbols)
    if bars is None:
        bars = (
            tables.read_symbols(BARS_1D, symbols, version=job.bars_version)
            if tables.exists(BARS_1D)
            else BARS_1D.schema.empty_table()
        )
    if actions is None:
        actions = CORPORATE_ACTION_SCHEMA.empty_table()
        if tables.exists(CORPORATE_ACTIONS) and not (
            job.bars_version is not None and job.actions_version is None
        ):
            actions = tables.read_symbols(CORPORATE_ACTIONS, symbols, version=job.actions_version)
    return bars, actions.select(CORPORATE_ACTION_SCHEMA.names).cast(CORPORATE_ACTION_SCHEMA)


def present_symbols(job: EngineJob, bars: pa.Table) -> list[str]:
    """The job's symbols that have bars, sorted."""
    found = set(pc.unique(bars.column("symbol")).to_pylist()) if bars.num_rows else set()
    return sorted(set(job.symbols) & found)


APPENDABLE = (DAILY_METRICS, INDICATORS_1D)
"""The derived datasets whose rows of a symbol up to its last one stand when it only gained
later bars (one row per bar, computed from the bars before it)."""
KEPT_WHEN_APPENDED = (ADJUSTMENT_FACTORS,)
"""The derived datasets whose rows of a symbol stand whole when it only gained later bars:
its spans of factors, whose last one has no end and takes the later bars (no action is dated
after them, or the symbol would not be appended)."""


class OutputWriter:
    """Commits each bucket's derived datasets to the lake on background threads.

    The datasets of a bucket are written concurrently (each is its own Delta commit, as
    before) while the engine computes the next bucket; at most one bucket's writes are in
    flight, so memory stays bounded by two buckets. Use it as a context manager: leaving it
    waits for every write, and the first write error is raised there (or by the next
    :meth:`submit`). Rows written are handed over to the next stage once committed.

    The job's ``appended`` symbols get only their rows after the last one the lake holds
    (see :func:`write_rows`); every other symbol's rows are replaced.
    """

    def __init__(self, job: EngineJob, workers: int = 2) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._job = job
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="marketlake-out")
        self._pending: list[tuple[Dataset, pa.Table, list[str], Future[int]]] = []
        self.written: dict[str, int] = {}

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self._settle()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, outputs: Sequence[tuple[Dataset, pa.Table]], symbols: list[str]) -> None:
        """Replace ``symbols``' rows of each dataset by its table (after the previous bucket's
        writes have committed)."""
        self._settle()
        handover = self._job.handover
        for dataset, table in outputs:
            table = plain_strings(table)
            if handover is not None:
                handover.discard(dataset, symbols)
            grows = dataset in APPENDABLE or dataset in KEPT_WHEN_APPENDED
            grown = [s for s in symbols if s in self._job.appended] if grows else []
            future = self._pool.submit(write_rows, self._job.tables, dataset, table, symbols, grown)
            self._pending.append((dataset, table, symbols, future))

    def _settle(self) -> None:
        pending, self._pending = self._pending, []
        for dataset, table, symbols, future in pending:
            rows = future.result()
            if self._job.handover is not None and dataset in BATCH_LOADS:  # what load takes
                at = self._job.tables.last_commit(dataset)
                self._job.handover.put(dataset, table, symbols, at)
            self.written[dataset.name] = self.written.get(dataset.name, 0) + rows


def write_rows(
    tables: LakeTables, dataset: Dataset, table: pa.Table, symbols: list[str], grown: list[str]
) -> int:
    """Write ``table``, every derived row of ``symbols``, to ``dataset``; return the rows
    written. Of the ``grown`` symbols only the rows after the last one the lake holds are
    appended (a symbol without rows there is replaced like the others).

    The last row is read from the lake at each write, so a write retried, or run again after
    a kill, appends only what is still missing. Datasets of :data:`KEPT_WHEN_APPENDED` keep
    the ``grown`` symbols' rows as the lake holds them.
    """
    if dataset in KEPT_WHEN_APPENDED:
        kept = tables.symbol_counts(dataset, grown) if grown and tables.exists(dataset) else {}
        whole = [s for s in symbols if s not in kept]
        if len(whole) < len(symbols):
            table = table.filter(pc.is_in(table.column("symbol"), pa.array(whole, pa.string())))
        if whole:
            tables.replace_symbols(dataset, table, whole, keys=dataset.keys)
        return table.num_rows if whole else 0
    last = _last_rows(tables, dataset, grown) if grown else {}
    if not last:
        tables.replace_symbols(dataset, table, symbols, keys=dataset.keys)
        return table.num_rows
    ts_type = table.schema.field("ts").type
    index = pc.index_in(table.column("symbol"), value_set=pa.array(list(last), pa.string()))
    after = pc.take(pa.array(list(last.values()), ts_type), index)
    new_rows = table.filter(pc.fill_null(pc.greater(table.column("ts"), after), False))
    whole = [s for s in symbols if s not in last]
    written = new_rows.num_rows
    if whole:
        rest = table.filter(pc.is_null(index))
        tables.replace_symbols(dataset, rest, whole, keys=dataset.keys)
        written += rest.num_rows
    if new_rows.num_rows:
        tables.merge(dataset, new_rows, dataset.keys, none_stored=True)
    return written


def _last_rows(tables: LakeTables, dataset: Dataset, symbols: list[str]) -> dict[str, object]:
    """The ``ts`` of each of ``symbols``' last row in the lake's ``dataset`` (symbols without
    rows left out)."""
    if not tables.exists(dataset):
        return {}
    stored = tables.read_symbols(dataset, symbols, columns=["symbol", "ts"])
    if stored.num_rows == 0:
        return {}
    grouped = stored.group_by("symbol").aggregate([("ts", "max")])
    return dict(
        zip(
            grouped.column("symbol").to_pylist(),
            grouped.column("ts_max").to_pylist(),
            strict=True,
        )
    )
