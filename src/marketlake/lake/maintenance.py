"""Lake maintenance: find and describe Delta tables, their history, compaction and vacuum,
and write probes.

These work on any lake root (local disk or S3) through :class:`LakeStorage` and
:class:`LakeTables`; the command line (``marketlake lake ...``) and ``marketlake doctor`` call
them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from marketlake.errors import TerminalError
from marketlake.lake.names import validate_table_name
from marketlake.lake.storage import LakeStorage

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable


PROBE_FOLDER = "_doctor"
_TABLE_SEGMENT = re.compile(r"^[a-z][a-z0-9_]*$")
_SKIPPED_AREAS = ("raw",)


@dataclass(frozen=True)
class TableInfo:
    """One Delta table: its current version, live data files, rows and bytes."""

    name: str
    version: int
    files: int
    rows: int
    size_bytes: int


def find_tables(storage: LakeStorage) -> list[str]:
    """Names of every Delta table in the lake (``area/table``, any area but raw/), sorted."""
    names: list[str] = []
    for area in storage.list_dirs():
        if area in _SKIPPED_AREAS or not _TABLE_SEGMENT.match(area):
            continue
        for folder in storage.list_dirs(area):
            if _TABLE_SEGMENT.match(folder) and storage.exists(f"{area}/{folder}/_delta_log"):
                names.append(f"{area}/{folder}")
    return sorted(names)


def compact_table(storage: LakeStorage, name: str) -> dict[str, Any]:
    """Rewrite the small files of table ``name`` into larger ones (one commit; content
    unchanged); return Delta's metrics (``numFilesRemoved``, ``numFilesAdded``, ...)."""
    from marketlake.lake.commits import table_schema, writer_properties

    validate_table_name(name)

    def compact() -> dict[str, Any]:
        table = _delta(storage, name)
        properties = writer_properties(table_schema(table), name)
        return dict(table.optimize.compact(writer_properties=properties))

    return storage.run(f"compacting table {name}", compact)


def table_history(
    storage: LakeStorage, name: str, limit: int | None = None
) -> list[dict[str, Any]]:
    """The commits of table ``name``, newest first (version, timestamp, operation, metrics)."""
    validate_table_name(name)
    return storage.run(
        f"reading history of table {name}", lambda: _delta(storage, name).history(limit)
    )


def describe_table(storage: LakeStorage, name: str) -> TableInfo:
    """Version, live file count, row count and size of table ``name`` (from its Delta log)."""
    import pyarrow as pa

    validate_table_name(name)

    def inspect() -> TableInfo:
        table = _delta(storage, name)
        actions = pa.table(table.get_add_actions(flatten=True))
        records = actions.column("num_records").to_pylist() if actions.num_rows else []
        if any(count is None for count in records):  # files written without statistics
            rows = int(table.to_pyarrow_dataset(filesystem=storage.subtree(name)).count_rows())
        else:
            rows = int(sum(records))
        size = int(sum(actions.column("size_bytes").to_pylist())) if actions.num_rows else 0
        return TableInfo(name, int(table.version()), actions.num_rows, rows, size)

    return storage.run(f"describing table {name}", inspect)


def describe_tables(storage: LakeStorage, names: Sequence[str] | None = None) -> list[TableInfo]:
    """:func:`describe_table` for ``names`` (default: every table of the lake)."""
    return [describe_table(storage, name) for name in choose_tables(storage, names)]


def choose_tables(storage: LakeStorage, names: Sequence[str] | None) -> list[str]:
    """``names`` checked to exist, or every table of the lake when none are given."""
    found = find_tables(storage)
    if not names:
        return found
    unknown = [validate_table_name(n) for n in names if n not in found]
    if unknown:
        listed = ", ".join(found) or "none yet"
        raise TerminalError(
            f"no Delta table {', '.join(unknown)} in {storage.describe()}; tables found: {listed}"
        )
    return list(names)


def history_rows(storage: LakeStorage, name: str, limit: int | None = None) -> pa.Table:
    """Commits of table ``name``, newest first: version, UTC time, operation, rows and files."""
    import pyarrow as pa

    from marketlake.schemas import UTC_US

    commits = table_history(storage, name, limit)
    rows = []
    for commit in commits:
        metrics = commit.get("operationMetrics") or {}
        rows.append(
            {
                "version": int(commit["version"]),
                "committed_at": datetime.fromtimestamp(commit["timestamp"] / 1000, UTC),
                "operation": str(commit.get("operation", "")),
                "rows_added": _metric(metrics, "num_added_rows", "num_target_rows_inserted"),
                "rows_updated": _metric(metrics, "num_target_rows_updated", "num_updated_rows"),
                "rows_deleted": _metric(metrics, "num_deleted_rows", "num_target_rows_deleted"),
                "files_added": _metric(metrics, "num_added_files", "numFilesAdded"),
                "files_removed": _metric(metrics, "num_removed_files", "numFilesRemoved"),
            }
        )
    schema = pa.schema(
        [
            pa.field("version", pa.int64()),
            pa.field("committed_at", UTC_US),
            pa.field("operation", pa.string()),
            *(
                pa.field(column, pa.int64())
                for column in (
                    "rows_added",
                    "rows_updated",
                    "rows_deleted",
                    "files_added",
                    "files_removed",
                )
            ),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def vacuum_table(
    storage: LakeStorage, name: str, retention_hours: int, *, dry_run: bool = False
) -> list[str]:
    """Delete the files of table ``name`` that no version of the last ``retention_hours`` uses.

    A full vacuum: besides files replaced by later versions, it removes orphans (data files
    of writes that never committed, e.g. a run killed or cut off from S3 mid-write). Returns
    the files (relative to the table) that were, or with ``dry_run`` would be, deleted; only
    files still stored are listed. Time travel to versions older than the retention stops
    working once their files are gone.
    """
    validate_table_name(name)
    if retention_hours < 0:
        raise TerminalError(f"retention_hours must be >= 0, got {retention_hours}")
    prefixes = (f"{storage.uri(name)}/", f"{storage.path(name)}/")

    def relative(path: str) -> str:
        for prefix in prefixes:
            if path.startswith(prefix):
                return path[len(prefix) :]
        return path.lstrip("/")

    def sweep(dry: bool) -> list[str]:
        found = _delta(storage, name).vacuum(
            retention_hours=retention_hours,
            dry_run=dry,
            enforce_retention_duration=False,
            full=True,
        )
        return sorted({relative(path) for path in found})

    candidates = storage.run(f"vacuuming table {name}", lambda: sweep(True))
    stored = {path[len(name) + 1 :] for path in storage.list_files(name)}
    present = [path for path in candidates if path in stored]
    if present and not dry_run:
        storage.run(f"vacuuming table {name}", lambda: sweep(False))
    return present


def probe_writes(storage: LakeStorage) -> str:
    """Write, read back and delete a small object under ``_doctor/``; return its path."""
    relpath = f"{PROBE_FOLDER}/probe-{uuid.uuid4().hex[:12]}.bin"
    payload = uuid.uuid4().bytes
    storage.write_bytes(relpath, payload)
    try:
        back = storage.read_bytes(relpath)
    finally:
        storage.delete(relpath)
    if back != payload:
        raise TerminalError(f"{storage.describe()}: the probe {relpath} read back different bytes")
    if not storage.list_files(PROBE_FOLDER):
        storage.delete(PROBE_FOLDER)
    return relpath


def _delta(storage: LakeStorage, name: str) -> DeltaTable:
    """The Delta table ``name`` at its current version."""
    from deltalake import DeltaTable

    return DeltaTable(storage.uri(name), storage_options=storage.storage_options())


def _metric(metrics: dict[str, Any], *names: str) -> int | None:
    for key in names:
        if metrics.get(key) is not None:
            return int(metrics[key])
    return None
