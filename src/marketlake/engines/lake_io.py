"""Lake reads and writes every engine shares: the job's curated inputs, the derived outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import BARS_1D, CORPORATE_ACTIONS, Dataset
from marketlake.lake.tables import symbol_filter
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


def read_inputs(job: EngineJob) -> tuple[pa.Table, pa.Table]:
    """The curated bars and corporate actions of the job's symbols, at the job's snapshot."""
    tables, wanted = job.tables, symbol_filter(job.symbols)
    bars = (
        tables.read(BARS_1D, filter=wanted, version=job.bars_version)
        if tables.exists(BARS_1D)
        else BARS_1D.schema.empty_table()
    )
    actions = CORPORATE_ACTION_SCHEMA.empty_table()
    if tables.exists(CORPORATE_ACTIONS) and not (
        job.bars_version is not None and job.actions_version is None
    ):
        actions = tables.read(CORPORATE_ACTIONS, filter=wanted, version=job.actions_version)
        actions = actions.cast(CORPORATE_ACTION_SCHEMA)
    return bars, actions


def present_symbols(job: EngineJob, bars: pa.Table) -> list[str]:
    """The job's symbols that have bars, sorted."""
    found = set(pc.unique(bars.column("symbol")).to_pylist()) if bars.num_rows else set()
    return sorted(set(job.symbols) & found)


def write_output(job: EngineJob, dataset: Dataset, table: pa.Table, symbols: list[str]) -> int:
    """Replace ``symbols``' rows of ``dataset`` by ``table`` in one commit; return rows."""
    table = plain_strings(table)
    job.tables.replace_symbols(dataset, table, symbols, keys=dataset.keys)
    return table.num_rows
