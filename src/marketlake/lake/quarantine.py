"""The quarantine in the lake: one Delta table per dataset under ``quarantine/<dataset>``.

Quarantine rows are built by :mod:`marketlake.records` (the record as JSON, its stable id, the
rule that rejected it); this module writes them to their tables and reads them back. Rows are
merged on ``QUARANTINE_KEYS``, so quarantining the same record again (a re-run) finds the
existing row instead of adding a copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketlake.catalogue import QUARANTINE_AREA, quarantine_table
from marketlake.records import check_dataset
from marketlake.schemas import QUARANTINE_KEYS, QUARANTINE_SCHEMA

if TYPE_CHECKING:
    import pyarrow as pa

    from marketlake.lake.tables import LakeTables


def write_quarantine(tables: LakeTables, rejects: pa.Table) -> dict[str, int]:
    """Merge ``rejects`` into ``quarantine/<dataset>`` on QUARANTINE_KEYS.

    Returns the number of distinct rejected records per dataset in ``rejects``. A record
    already quarantined by the same rule keeps its first ``quarantined_at``.
    """
    import pyarrow.compute as pc

    from marketlake.rows import deduplicate
    from marketlake.schemas import conform

    if rejects.num_rows == 0:
        return {}
    rejects = conform(rejects, QUARANTINE_SCHEMA)
    counts: dict[str, int] = {}
    for dataset in sorted(pc.unique(rejects.column("dataset")).to_pylist()):
        check_dataset(dataset)
        part = deduplicate(rejects.filter(pc.field("dataset") == dataset), QUARANTINE_KEYS)
        tables.merge(quarantine_table(dataset), part, QUARANTINE_KEYS, update_existing=False)
        counts[dataset] = part.num_rows
    return counts


def read_quarantine(tables: LakeTables) -> pa.Table:
    """Every quarantined record of every dataset, in QUARANTINE_SCHEMA."""
    import pyarrow as pa

    from marketlake.schemas import conform

    parts = [
        conform(tables.read(name), QUARANTINE_SCHEMA)
        for name in tables.list_tables()
        if name.startswith(f"{QUARANTINE_AREA}/")
    ]
    if not parts:
        return QUARANTINE_SCHEMA.empty_table()
    return pa.concat_tables(parts)
