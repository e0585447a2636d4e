"""Lake reads and writes every engine shares: the job's curated inputs, the derived outputs.

Inputs come from the job's handover when it holds them (the previous stage of the same
process committed them) and from the lake otherwise; both give the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import BARS_1D, CORPORATE_ACTIONS, Dataset
from marketlake.schemas import CORPORATE_ACTION_SCHEMA

if TYPE_CHECKING:
    from concurrent.futures import Future

    from marketlake.engines.base import EngineJob
    from marketlake.lake.commits import MergeStats


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


class OutputWriter:
    """Commits each bucket's derived datasets to the lake on background threads.

    The datasets of a bucket are written concurrently (each is its own Delta commit, as
    before) while the engine computes the next bucket; at most one bucket's writes are in
    flight, so memory stays bounded by two buckets. Use it as a context manager: leaving it
    waits for every write, and the first write error is raised there (or by the next
    :meth:`submit`). Rows written are handed over to the next stage once committed.
    """

    def __init__(self, job: EngineJob, workers: int = 2) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._job = job
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="marketlake-out")
        self._pending: list[tuple[Dataset, pa.Table, list[str], Future[MergeStats]]] = []
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
            future = self._pool.submit(
                self._job.tables.replace_symbols, dataset, table, symbols, keys=dataset.keys
            )
            self._pending.append((dataset, table, symbols, future))

    def _settle(self) -> None:
        pending, self._pending = self._pending, []
        for dataset, table, symbols, future in pending:
            future.result()
            if self._job.handover is not None:
                self._job.handover.put(dataset, table, symbols)
            self.written[dataset.name] = self.written.get(dataset.name, 0) + table.num_rows
