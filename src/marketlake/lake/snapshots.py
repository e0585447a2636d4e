"""Time travel on the lake: choosing a snapshot, reading it, and recomputing analytics from it.

A snapshot is a table version or a moment; a moment selects, in each table, the newest
version committed at or before it (by the commit's own timestamp).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from marketlake.errors import TerminalError
from marketlake.lake.tables import LakeTables

if TYPE_CHECKING:
    import pyarrow as pa


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


def resolve_version(tables: LakeTables, name: str, snapshot: Snapshot) -> int | None:
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
    symbols: Sequence[str] | None = None,
    limit: int | None = None,
) -> pa.Table:
    """Rows of table ``name`` at ``snapshot`` (default: latest), optionally of ``symbols`` only."""
    import pyarrow.compute as pc

    from marketlake.symbols import validate_symbols

    version = None
    if snapshot is not None:
        version = resolve_version(tables, name, snapshot)
        if version is None:
            raise TerminalError(
                f"table {name} has no version as of {snapshot.describe()} (its first commit "
                "is later); see `marketlake lake history`"
            )
        _check_version(tables, name, version)
    wanted = validate_symbols(symbols) if symbols else None
    data = tables.read(
        name, version=version, filter=pc.field("symbol").isin(wanted) if wanted else None
    )
    if "symbol" in data.column_names and "ts" in data.column_names:
        data = data.sort_by([("symbol", "ascending"), ("ts", "ascending")])
    return data.slice(0, limit) if limit is not None else data


@dataclass(frozen=True)
class ReprocessResult:
    """What :func:`reprocess_snapshot` did: the snapshot read and the rows written per table."""

    bars_version: int
    actions_version: int | None
    symbols: list[str]
    rows: dict[str, int]


def reprocess_snapshot(
    tables: LakeTables,
    snapshot: Snapshot,
    *,
    engine: str = "local",
    symbols: Sequence[str] | None = None,
) -> ReprocessResult:
    """Recompute the analytics tables from curated bars and actions as they were at ``snapshot``.

    A version number selects that version of ``curated/bars_1d`` and the corporate actions
    current when it was committed; a time selects both tables as of that time. The adjusted
    bars, daily metrics and indicators of the symbols (default: every symbol in the snapshot)
    are replaced, one commit per table, by what the process stage computes from the snapshot,
    so the analytics describe exactly that snapshot until the next ``marketlake run``.
    """
    import pyarrow.compute as pc

    from marketlake.analytics.adjust import adjust_table
    from marketlake.analytics.engine import create_engine
    from marketlake.pipeline.lake_names import ACTIONS, ADJUSTED, BARS, INDICATORS, METRICS
    from marketlake.pipeline.process import ANALYTICS_KEYS, plain_strings, symbol_filter
    from marketlake.schemas import CORPORATE_ACTION_SCHEMA
    from marketlake.symbols import validate_symbols

    if not tables.exists(BARS):
        raise TerminalError(f"no {BARS} table in {tables.storage.describe()}: nothing to reprocess")
    bars_version = resolve_version(tables, BARS, snapshot)
    if bars_version is None:
        raise TerminalError(f"{BARS} has no version as of {snapshot.describe()}")
    _check_version(tables, BARS, bars_version)
    moment = snapshot.at
    if moment is None:
        (commit,) = [c for c in tables.history(BARS) if int(c["version"]) == bars_version]
        moment = datetime.fromtimestamp(commit["timestamp"] / 1000, UTC)
    actions_version = (
        resolve_version(tables, ACTIONS, Snapshot(at=moment)) if tables.exists(ACTIONS) else None
    )
    if symbols:
        chosen = validate_symbols(symbols)
    else:
        names = tables.read(BARS, columns=["symbol"], version=bars_version).column("symbol")
        chosen = sorted(str(s) for s in pc.unique(names).to_pylist())
    bars = tables.read(BARS, filter=symbol_filter(chosen), version=bars_version)
    actions = CORPORATE_ACTION_SCHEMA.empty_table()
    if actions_version is not None:
        actions = tables.read(ACTIONS, filter=symbol_filter(chosen), version=actions_version)
        actions = actions.cast(CORPORATE_ACTION_SCHEMA)
    adjusted = adjust_table(bars, actions)
    metrics, indicators = create_engine(engine).run(adjusted)
    written: dict[str, int] = {}
    for name, table in ((ADJUSTED, adjusted), (METRICS, metrics), (INDICATORS, indicators)):
        table = plain_strings(table)
        tables.replace_symbols(name, table, chosen, keys=ANALYTICS_KEYS)
        written[name] = table.num_rows
    return ReprocessResult(bars_version, actions_version, chosen, written)


def _check_version(tables: LakeTables, name: str, version: int) -> None:
    current = tables.version(name)
    if not 0 <= version <= current:
        raise TerminalError(
            f"table {name} has no version {version}: versions run from 0 to {current}"
        )
