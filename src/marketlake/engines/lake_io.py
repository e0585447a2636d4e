"""Lake reads and writes every engine shares: the job's curated inputs, the derived outputs.

Inputs come from the job's handover when it holds them (the previous stage of the same
process committed them) and from the lake otherwise; both give the same rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import BARS_1D, CORPORATE_ACTIONS, Dataset
from marketlake.schemas import CORPORATE_ACTION_SCHEMA

if TYPE_CHECKING:
    from marketlake.engines.base import EngineJob


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


def write_output(job: EngineJob, dataset: Dataset, table: pa.Table, symbols: list[str]) -> int:
    """Replace ``symbols``' rows of ``dataset`` by ``table`` in one commit; return rows.

    With a handover, the rows written are handed over to the next stage.
    """
    table = plain_strings(table)
    if job.handover is not None:
        job.handover.discard(dataset, symbols)
    job.tables.replace_symbols(dataset, table, symbols, keys=dataset.keys)
    if job.handover is not None:
        job.handover.put(dataset, table, symbols)
    return table.num_rows
