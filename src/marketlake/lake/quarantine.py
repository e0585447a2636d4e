"""The quarantine in the lake: one Delta table per dataset under ``quarantine/<dataset>``.

Quarantine rows are built by :mod:`marketlake.records` (the record as JSON, its stable id, the
rule that rejected it); this module writes them to their tables and reads them back. Rows are
merged on ``QUARANTINE_KEYS``, so quarantining the same record again (a re-run) finds the
existing row instead of adding a copy.

A row is *resolved* when a later run stores its record after all (the split that explained a
price gap arrived, say): :func:`resolve_quarantine` sets ``resolved_at`` and ``resolution``.
The row stays for the audit but no longer counts as current (:func:`current_count`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketlake.catalogue import QUARANTINE, QUARANTINE_AREA, quarantine_table
from marketlake.records import check_dataset
from marketlake.schemas import QUARANTINE_KEYS, QUARANTINE_SCHEMA

if TYPE_CHECKING:
    from datetime import datetime

    import pyarrow as pa

    from marketlake.catalogue import Dataset
    from marketlake.lake.tables import LakeTables


def write_quarantine(tables: LakeTables, rejects: pa.Table) -> dict[str, int]:
    """Merge ``rejects`` into ``quarantine/<dataset>`` on QUARANTINE_KEYS.

    Returns the number of distinct rejected records per dataset in ``rejects``. A record
    already quarantined by the same rule keeps its first ``quarantined_at``.
    """
    import pyarrow.compute as pc

    from marketlake.rows import deduplicate

    if rejects.num_rows == 0:
        return {}
    rejects = QUARANTINE.conform(rejects)
    counts: dict[str, int] = {}
    for dataset in sorted(pc.unique(rejects.column("dataset")).to_pylist()):
        check_dataset(dataset)
        part = deduplicate(rejects.filter(pc.field("dataset") == dataset), QUARANTINE_KEYS)
        tables.merge(quarantine_table(dataset), part, QUARANTINE_KEYS, update_existing=False)
        counts[dataset] = part.num_rows
    return counts


def read_quarantine(tables: LakeTables) -> pa.Table:
    """Every quarantined record of every dataset, in QUARANTINE_SCHEMA (resolved ones too)."""
    import pyarrow as pa

    parts = [
        QUARANTINE.conform(tables.read(name))
        for name in tables.list_tables()
        if name.startswith(f"{QUARANTINE_AREA}/")
    ]
    if not parts:
        return QUARANTINE_SCHEMA.empty_table()
    return pa.concat_tables(parts)


def current_count(quarantine: pa.Table) -> int:
    """Rows of ``quarantine`` (QUARANTINE_SCHEMA) that are not resolved."""
    return int(quarantine.column("resolved_at").null_count)


RESOLVED_BY_STORE = "a later run stored the record"


def resolve_stored(tables: LakeTables, bars: pa.Table, actions: pa.Table, now: datetime) -> int:
    """Resolve the quarantine rows whose records were just stored: ``bars`` (``BAR_SCHEMA``)
    in ``bars_1d``, ``actions`` (corporate actions) in ``corporate_actions``."""
    from marketlake.catalogue import BARS_1D, CORPORATE_ACTIONS
    from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA

    return resolve_quarantine(
        tables, BARS_1D, bars, BAR_SCHEMA, now, RESOLVED_BY_STORE
    ) + resolve_quarantine(
        tables, CORPORATE_ACTIONS, actions, CORPORATE_ACTION_SCHEMA, now, RESOLVED_BY_STORE
    )


def resolve_quarantine(
    tables: LakeTables,
    dataset: Dataset,
    stored: pa.Table,
    record_schema: pa.Schema,
    now: datetime,
    resolution: str,
) -> int:
    """Mark resolved the current quarantine rows of ``dataset`` whose record ``stored`` holds.

    ``stored`` holds rows just written to ``dataset`` (with the columns of ``record_schema``,
    the schema the rejected records were built from). A quarantined record is the same as a
    stored row when every field but ``ingested_at`` is equal (the identity its
    ``record_id`` hashes, recomputed from the record so rows written before that rule match
    too). Returns the number of rows marked.
    """
    import json

    import pyarrow as pa
    import pyarrow.compute as pc

    from marketlake.records import identity_json, record_id

    name = quarantine_table(dataset.name)
    if stored.num_rows == 0 or not tables.exists(name):
        return 0
    symbols = pc.unique(stored.column("symbol")).to_pylist()
    rows = QUARANTINE.conform(tables.read_symbols(name, symbols))
    rows = rows.filter(pc.is_null(rows.column("resolved_at")))
    if rows.num_rows == 0:
        return 0
    ts_name = record_schema.names[1]  # ts of bars, ex_date of corporate actions
    keys = pa.table({"symbol": rows.column("symbol"), ts_name: rows.column("ts")})
    candidates = stored.select(record_schema.names).join(
        keys.group_by(["symbol", ts_name]).aggregate([]), ["symbol", ts_name], join_type="inner"
    )
    held = {
        record_id(dataset.name, identity_json(row))
        for row in candidates.select(record_schema.names).cast(record_schema).to_pylist()
    }
    same = [
        record is not None and record_id(dataset.name, identity_json(json.loads(record))) in held
        for record in rows.column("record").to_pylist()
    ]
    resolved = rows.filter(pa.array(same, pa.bool_()))
    if resolved.num_rows == 0:
        return 0
    resolved = resolved.set_column(
        resolved.schema.get_field_index("resolved_at"),
        QUARANTINE_SCHEMA.field("resolved_at"),
        pa.array([now] * resolved.num_rows, QUARANTINE_SCHEMA.field("resolved_at").type),
    ).set_column(
        resolved.schema.get_field_index("resolution"),
        QUARANTINE_SCHEMA.field("resolution"),
        pa.array([resolution] * resolved.num_rows, pa.string()),
    )
    tables.merge(name, resolved, QUARANTINE_KEYS)
    return resolved.num_rows
