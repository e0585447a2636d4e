"""Time travel on the lake: choosing a snapshot and reading it.

A snapshot is a table version or a moment; a moment selects, in each table, the newest
version committed at or before it (by the commit's own timestamp).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from marketlake.errors import TerminalError
from marketlake.lake.names import TableRef, validate_table_name
from marketlake.lake.tables import LakeTables

if TYPE_CHECKING:
    import pyarrow as pa

    from marketlake.symbols import Symbol


@dataclass(frozen=True)
class Snapshot:
    """A point in a table's history: a version number, or the version current at a time."""

    version: int | None = None
    at: datetime | None = None

    def describe(self) -> str:
        """``version 3`` or ``2024-06-01T00:00:00+00:00``, for messages."""
        return f"version {self.version}" if self.at is None else self.at.isoformat()


def parse_snapshot(text: str) -> Snapshot:
    """Parse ``--as-of``: a version number (``3``) or an ISO date/time (UTC when no offset)."""
    value = text.strip()
    if value.isdigit():
        return Snapshot(version=int(value))
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise TerminalError(
            f"invalid --as-of {text!r}: use a table version (e.g. 3) or an ISO 8601 date/time "
            "(e.g. 2024-06-01 or 2024-06-01T12:00:00+00:00)"
        ) from None
    return Snapshot(at=moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def resolve_version(tables: LakeTables, name: TableRef, snapshot: Snapshot) -> int | None:
    """The version of ``name`` that ``snapshot`` selects; None when the table is newer."""
    if snapshot.at is None:
        return snapshot.version
    limit_ms = snapshot.at.timestamp() * 1000
    for commit in tables.history(name):
        if commit.get("timestamp", 0) <= limit_ms:
            return int(commit["version"])
    return None


def read_snapshot(
    tables: LakeTables,
    name: str,
    snapshot: Snapshot | None = None,
    *,
    symbols: Sequence[Symbol] | None = None,
    limit: int | None = None,
) -> pa.Table:
    """Rows of table ``name`` at ``snapshot`` (default: latest), optionally of ``symbols`` only."""
    import pyarrow.compute as pc

    version = None
    if snapshot is not None:
        version = resolve_version(tables, name, snapshot)
        if version is None:
            raise TerminalError(
                f"table {validate_table_name(name)} has no version as of {snapshot.describe()} "
                "(its first commit is later); see `marketlake lake history`"
            )
        check_version(tables, name, version)
    wanted = list(symbols) if symbols else None
    data = tables.read(
        name, version=version, filter=pc.field("symbol").isin(wanted) if wanted else None
    )
    if "symbol" in data.column_names and "ts" in data.column_names:
        data = data.sort_by([("symbol", "ascending"), ("ts", "ascending")])
    return data.slice(0, limit) if limit is not None else data


def check_version(tables: LakeTables, name: TableRef, version: int) -> None:
    """Raise TerminalError unless table ``name`` has ``version``."""
    current = tables.version(name)
    if not 0 <= version <= current:
        raise TerminalError(
            f"table {validate_table_name(name)} has no version {version}: versions run from 0 "
            f"to {current}"
        )
