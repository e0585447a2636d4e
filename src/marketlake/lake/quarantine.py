"""Rejected records as data: one Delta table per dataset under ``quarantine/<dataset>``.

Each rejected row is kept whole as compact JSON (sorted keys, ISO timestamps) with the rule
that rejected it. ``record_id`` is the SHA-1 of the dataset and that JSON
(:mod:`marketlake.records`), so quarantining the same record again (a re-run) finds the
existing row instead of adding a copy.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from marketlake.errors import TerminalError
from marketlake.records import record_id, record_json
from marketlake.schemas import QUARANTINE_KEYS, QUARANTINE_SCHEMA, UTC_US

if TYPE_CHECKING:
    import pyarrow as pa

    from marketlake.lake.tables import LakeTables

QUARANTINE_ROOT = "quarantine"
_DATASET = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _check_dataset(dataset: str) -> str:
    if not isinstance(dataset, str) or not _DATASET.match(dataset):
        raise TerminalError(
            f"invalid quarantine dataset {dataset!r}: lower-case letters, digits and '_'"
        )
    return dataset


def quarantine_rows(
    dataset: str,
    rows: pa.Table,
    rule: str,
    detail: str | Sequence[str],
    source: str | None = None,
    now: datetime | None = None,
) -> pa.Table:
    """Build QUARANTINE_SCHEMA rows for ``rows`` of ``dataset`` rejected by ``rule``.

    ``detail`` is one reason for all rows or one per row. ``symbol``, ``ts`` and (unless
    ``source`` is given) ``source`` are copied from the rows when they have those columns.
    """
    import pyarrow as pa

    _check_dataset(dataset)
    if not rule:
        raise TerminalError("quarantine_rows needs the name of the rule that rejected the rows")
    count = rows.num_rows
    details = [detail] * count if isinstance(detail, str) else list(detail)
    if len(details) != count:
        raise TerminalError(f"quarantine_rows got {len(details)} details for {count} rows")
    stamp = now or datetime.now(UTC)
    if stamp.tzinfo is None:
        raise TerminalError(f"quarantine time must be timezone-aware (UTC), got {stamp}")
    records = [record_json(row) for row in rows.to_pylist()]
    columns: dict[str, Any] = {
        "dataset": pa.array([dataset] * count, pa.string()),
        "record_id": pa.array([record_id(dataset, r) for r in records], pa.string()),
        "rule": pa.array([rule] * count, pa.string()),
        "detail": pa.array(details, pa.string()),
        "symbol": _copied(rows, "symbol", pa.string()),
        "ts": _copied(rows, "ts", UTC_US),
        "record": pa.array(records, pa.string()),
        "source": (
            pa.array([source] * count, pa.string())
            if source is not None
            else _copied(rows, "source", pa.string())
        ),
        "quarantined_at": pa.array([stamp] * count, UTC_US),
    }
    return pa.table(columns, schema=QUARANTINE_SCHEMA)


def _copied(rows: pa.Table, name: str, target: pa.DataType) -> pa.Array | pa.ChunkedArray:
    """Column ``name`` cast to ``target``, or nulls when it is absent or of another kind."""
    import pyarrow as pa

    if name in rows.column_names:
        column = rows.column(name)
        compatible = (pa.types.is_timestamp(column.type) and pa.types.is_timestamp(target)) or (
            pa.types.is_string(target)
            and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type))
        )
        if compatible:
            return column.cast(target, safe=False).combine_chunks()
    return pa.nulls(rows.num_rows, target)


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
        _check_dataset(dataset)
        part = deduplicate(rejects.filter(pc.field("dataset") == dataset), QUARANTINE_KEYS)
        tables.merge(f"{QUARANTINE_ROOT}/{dataset}", part, QUARANTINE_KEYS, update_existing=False)
        counts[dataset] = part.num_rows
    return counts


def read_quarantine(tables: LakeTables) -> pa.Table:
    """Every quarantined record of every dataset, in QUARANTINE_SCHEMA."""
    import pyarrow as pa

    from marketlake.schemas import conform

    parts = [
        conform(tables.read(name), QUARANTINE_SCHEMA)
        for name in tables.list_tables()
        if name.startswith(f"{QUARANTINE_ROOT}/")
    ]
    if not parts:
        return QUARANTINE_SCHEMA.empty_table()
    return pa.concat_tables(parts)
