"""Delta Lake tables of the lake: idempotent writes, reads with time travel, maintenance.

Tables are named by their path under the lake root (``curated/bars_1d``). Every write is one
Delta commit, so a process killed mid-write leaves the table at its previous version (data
files written before the kill are orphans that :meth:`LakeTables.vacuum` removes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from marketlake.errors import TerminalError
from marketlake.lake import maintenance
from marketlake.lake.commits import MergeStats, create_table, merge_rows, replace_rows
from marketlake.lake.merge import check_keys
from marketlake.lake.names import TableRef, validate_table_name
from marketlake.lake.storage import LakeStorage
from marketlake.rows import deduplicate
from marketlake.symbols import Symbol, parse_symbols

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads
    from deltalake import DeltaTable


def symbol_filter(symbols: Sequence[str]) -> pc.Expression:
    """A pyarrow filter selecting the rows of ``symbols``."""
    import pyarrow.compute as pc

    return pc.field("symbol").isin(list(symbols))


def symbol_predicate(symbols: Sequence[Symbol]) -> str:
    """The SQL predicate of the rows of ``symbols`` (``symbol IN ('A', 'B')``) for delta-rs.

    Delta predicates are SQL text: this is the one place such text is built from values, and
    it takes only parsed :class:`~marketlake.symbols.Symbol` s (quoted all the same).
    """
    if not symbols:
        raise TerminalError("a symbol predicate needs at least one symbol")
    for symbol in symbols:
        if type(symbol) is not Symbol:
            raise TerminalError(
                f"{symbol!r} is not a parsed Symbol: parse it with marketlake.symbols.parse_symbol"
            )
    quoted = ", ".join("'" + symbol.replace("'", "''") + "'" for symbol in symbols)
    return f"symbol IN ({quoted})"


@dataclass(frozen=True)
class TableState:
    """A Delta table's id, fixed when the table was created (a table deleted and created
    again at the same path has another), and its version."""

    table_id: str
    version: int


class LakeTables:
    """Delta tables stored under one :class:`LakeStorage` root."""

    def __init__(self, storage: LakeStorage) -> None:
        import threading

        self.storage = storage
        self._own: set[tuple[str, TableState]] = set()  # the commits of this object
        self._own_lock = threading.Lock()

    # -- this object's commits ----------------------------------------------------------------

    def last_commit(self, name: TableRef) -> TableState | None:
        """The newest commit this object made to table ``name`` (None: none yet)."""
        name = validate_table_name(name)
        with self._own_lock:
            mine = [state for table, state in self._own if table == name]
        return max(mine, key=lambda state: state.version) if mine else None

    def only_own_since(self, name: TableRef, since: TableState, state: TableState) -> bool:
        """True when this object made every commit of table ``name`` from ``since`` to
        ``state`` (both included): no other writer changed the table in between."""
        name = validate_table_name(name)
        if since.table_id != state.table_id or since.version > state.version:
            return False
        versions = range(since.version, state.version + 1)
        with self._own_lock:
            return all((name, TableState(state.table_id, v)) in self._own for v in versions)

    def _noted(self, name: str, stats: MergeStats) -> MergeStats:
        """Remember a commit of this object (see :meth:`only_own_since`); return ``stats``."""
        if stats.committed and stats.version is not None:
            table_id = stats.table_id or str(self._open(name, stats.version).metadata().id)
            with self._own_lock:
                self._own.add((name, TableState(table_id, stats.version)))
        return stats

    # -- writes -------------------------------------------------------------------------------

    def merge(
        self,
        name: TableRef,
        data: pa.Table,
        keys: Sequence[str],
        partition_by: Sequence[str] | None = None,
        *,
        update_existing: bool = True,
        none_stored: bool = False,
    ) -> MergeStats:
        """Upsert ``data`` into table ``name`` on the natural ``keys``.

        The table is created (plain write, partitioned by ``partition_by``) when it does not
        exist. Otherwise one MERGE commit updates matched rows whose content changed (or
        leaves them alone when ``update_existing`` is False) and inserts the rest; a re-run
        with the same data changes nothing and makes no new version. Duplicate keys in
        ``data`` are reduced to their last row. Empty data is a no-op.

        ``none_stored`` says that the caller has just read the table and found none of
        ``data``'s keys: the rows are then appended, in key order, without the MERGE's
        join. Only the first attempt trusts it; a retry (whose failed attempt may have
        committed) MERGEs as usual.
        """
        name = validate_table_name(name)
        if data.num_rows == 0:
            return MergeStats(0, 0, self._version_or_none(name), committed=False)
        check_keys(data, keys, name)
        data = deduplicate(data, keys)
        trust = none_stored

        def attempt() -> MergeStats:
            nonlocal trust
            trusted, trust = trust, False  # a retry's earlier attempt may have committed
            stats = self._merge_once(name, data, keys, partition_by, update_existing, trusted)
            return self._noted(name, stats)

        return self.storage.run(f"merging into table {name}", attempt)

    def replace_symbols(
        self,
        name: TableRef,
        data: pa.Table,
        symbols: Sequence[str],
        keys: Sequence[str] | None = None,
        partition_by: Sequence[str] | None = None,
    ) -> MergeStats:
        """Replace every row of ``symbols`` in table ``name`` by ``data``, in one commit.

        Faster than :meth:`merge` for whole-history rewrites and just as idempotent: rows of
        other symbols are untouched, the symbols' old rows are removed and ``data`` added
        atomically. ``data`` may only hold rows of ``symbols`` (empty data deletes them).
        """
        import pyarrow.compute as pc

        name = validate_table_name(name)
        wanted = parse_symbols(symbols)
        if not wanted:
            return MergeStats(0, 0, self._version_or_none(name), committed=False)
        if data.num_rows:
            if "symbol" not in data.column_names:
                raise TerminalError(f"replacing symbols in {name}: data has no 'symbol' column")
            present = set(pc.unique(data.column("symbol")).to_pylist())
            stray = sorted(str(s) for s in present - set(wanted))
            if stray:
                raise TerminalError(
                    f"replacing symbols {wanted} in {name}: data also holds rows of {stray}"
                )
            if keys:
                check_keys(data, keys, name)
                data = deduplicate(data, keys)
        predicate = symbol_predicate(wanted)

        def replace() -> MergeStats:
            table = self._open_or_none(name)
            if table is None:
                if data.num_rows == 0:
                    return MergeStats(0, 0, None, committed=False)
                created = create_table(self.storage, name, data, partition_by)
                if created is not None:
                    return self._noted(name, created)
                table = self._open(name)
            return self._noted(name, replace_rows(table, name, data, predicate, wanted))

        return self.storage.run(f"replacing symbols in table {name}", replace)

    def delete(self, name: TableRef, predicate: str) -> int:
        """Delete the rows matching SQL ``predicate`` (e.g. ``"symbol = 'AAPL'"``); return count.

        ``predicate`` is SQL text: build it from parsed values only (rows of symbols:
        :func:`symbol_predicate`).
        """
        name = validate_table_name(name)

        def remove() -> int:
            metrics = self._open(name).delete(predicate)
            return int(metrics.get("num_deleted_rows", 0))

        return self.storage.run(f"deleting from table {name}", remove)

    # -- reads --------------------------------------------------------------------------------

    def read(
        self,
        name: TableRef,
        columns: Sequence[str] | None = None,
        filter: pc.Expression | Sequence[tuple[str, str, Any]] | None = None,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> pa.Table:
        """Read table ``name`` (optionally an older ``version`` or the version current ``as_of``).

        ``filter`` is a ``pyarrow.compute`` Expression (``pc.field("symbol") == "AAPL"``) or
        a list of ``(column, op, value)`` tuples in pyarrow's DNF form; it is pushed down to
        skip partitions, files and row groups.
        """
        dataset = self.dataset(name, version=version, as_of=as_of)
        expression = _as_expression(filter)

        # The filter is applied after the scan: files written by MERGE store strings as
        # string_view, and pyarrow cannot bind a pushed-down filter to mixed physical types.
        def scan() -> pa.Table:
            table = dataset.to_table()
            if expression is not None:
                table = table.filter(expression)
            return table.select(list(columns)) if columns is not None else table

        return self.storage.run(f"reading table {name}", scan)

    def read_symbols(
        self,
        name: TableRef,
        symbols: Sequence[str],
        columns: Sequence[str] | None = None,
        version: int | None = None,
    ) -> pa.Table:
        """The rows of ``symbols`` in table ``name`` (optionally at an older ``version``).

        Unlike :meth:`read`, files and row groups holding none of the symbols are skipped
        (see :mod:`marketlake.lake.symbol_reads`), so reading a table bucket by bucket does
        not scan it whole each time.
        """
        from marketlake.lake.symbol_reads import read_symbols

        name = validate_table_name(name)
        wanted = parse_symbols(symbols)
        return self.storage.run(
            f"reading table {name}",
            lambda: read_symbols(
                self._open(name, version), self.storage.subtree(name), wanted, columns
            ),
        )

    def read_symbols_added(
        self, name: TableRef, symbols: Sequence[str], since: TableState, state: TableState
    ) -> tuple[pa.Table, list[str]]:
        """The rows table ``name`` gained from state ``since`` to the later ``state``, of those
        of ``symbols`` whose rows of ``since`` are all still there; and those symbols.

        Delta files are immutable: when no file that may hold a symbol's rows (by the log's
        symbol statistics) was removed since ``since``, every row the symbol had then is
        still there, and the files added since hold exactly its new rows. A symbol whose
        file was removed or rewritten (by a MERGE, a replacement, compaction) is left out;
        so is every symbol for another table at the same path, a table that can hide rows of
        a kept file (deletion vectors) or a ``since`` version whose log is gone.
        """
        import pyarrow as pa
        from deltalake.exceptions import DeltaError

        from marketlake.lake.symbol_reads import holds_one_of, read_symbols

        name = validate_table_name(name)
        wanted = sorted(str(symbol) for symbol in parse_symbols(symbols))
        nothing: tuple[pa.Table, list[str]] = (pa.table({}), [])
        if since.table_id != state.table_id or since.version > state.version:
            return nothing

        def added() -> tuple[pa.Table, list[str]]:
            table = self._open(name, state.version)
            features = table.protocol().writer_features or []
            if "deletionVectors" in features or str(table.metadata().id) != state.table_id:
                return nothing
            try:
                before = self._open(name, since.version)
            except DeltaError:  # that version's log was cleaned up
                return nothing
            now = _file_ranges(table)
            then = _file_ranges(before)
            kept = [
                symbol
                for symbol in wanted
                if not any(
                    holds_one_of([symbol], low, high)
                    for path, (low, high) in then.items()
                    if path not in now
                )
            ]
            fs = self.storage.subtree(name)
            new_files = set(now) - set(then)
            return read_symbols(table, fs, kept, only=new_files), kept

        return self.storage.run(f"reading table {name}", added)

    def symbol_counts(
        self, name: TableRef, symbols: Sequence[str], version: int | None = None
    ) -> dict[str, int]:
        """Rows per symbol of ``symbols`` in table ``name`` (symbols without rows left out)."""
        from marketlake.lake.symbol_reads import count_symbols

        name = validate_table_name(name)
        wanted = parse_symbols(symbols)
        return self.storage.run(
            f"reading table {name}",
            lambda: count_symbols(self._open(name, version), self.storage.subtree(name), wanted),
        )

    def dataset(
        self, name: TableRef, version: int | None = None, as_of: datetime | None = None
    ) -> pads.Dataset:
        """A pyarrow Dataset of the table's current (or chosen) files, for zero-copy scans."""
        name = validate_table_name(name)

        if as_of is not None and as_of.tzinfo is None:
            raise TerminalError(f"as_of must be timezone-aware (UTC), got {as_of}")

        def build() -> pads.Dataset:
            chosen = version if as_of is None else self._version_at(name, as_of)
            table = self._open(name, chosen)
            return table.to_pyarrow_dataset(filesystem=self.storage.subtree(name))

        return self.storage.run(f"opening table {name}", build)

    def exists(self, name: TableRef) -> bool:
        """True when a Delta table with at least one commit exists at ``name``."""
        from deltalake import DeltaTable

        name = validate_table_name(name)
        uri, options = self.storage.uri(name), self.storage.storage_options()
        return self.storage.run(
            f"looking up table {name}",
            lambda: bool(DeltaTable.is_deltatable(uri, storage_options=options)),
        )

    def version(self, name: TableRef) -> int:
        """The table's current version (0 after the first write)."""
        name = validate_table_name(name)
        return self.storage.run(f"reading table {name}", lambda: self._open(name).version())

    def state(self, name: TableRef) -> TableState:
        """Which table ``name`` is and at which version, read in one opening."""
        name = validate_table_name(name)

        def read() -> TableState:
            table = self._open(name)
            return TableState(str(table.metadata().id), table.version())

        return self.storage.run(f"reading table {name}", read)

    def history(self, name: TableRef, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first (version, timestamp, operation, metrics)."""
        return maintenance.table_history(self.storage, validate_table_name(name), limit)

    def list_tables(self) -> list[str]:
        """Names of every Delta table in the lake (``area/table``, any area but raw/), sorted."""
        return maintenance.find_tables(self.storage)

    # -- maintenance (see :mod:`marketlake.lake.maintenance`) -------------------------------

    def compact(self, name: TableRef) -> dict[str, Any]:
        """Rewrite small files into larger ones (one commit; content unchanged)."""
        return maintenance.compact_table(self.storage, validate_table_name(name))

    def vacuum(self, name: TableRef, retention_hours: int, dry_run: bool = False) -> list[str]:
        """Delete files no version newer than ``retention_hours`` ago refers to, and orphaned
        files; list them (relative to the table). See
        :func:`marketlake.lake.maintenance.vacuum_table`."""
        return maintenance.vacuum_table(
            self.storage, validate_table_name(name), retention_hours, dry_run=dry_run
        )

    # -- internals ----------------------------------------------------------------------------

    def _open(self, name: str, version: int | None = None) -> DeltaTable:
        from deltalake import DeltaTable

        return DeltaTable(
            self.storage.uri(name), version=version, storage_options=self.storage.storage_options()
        )

    def _open_or_none(self, name: str) -> DeltaTable | None:
        from deltalake import DeltaTable

        uri, options = self.storage.uri(name), self.storage.storage_options()
        if not DeltaTable.is_deltatable(uri, storage_options=options):
            return None
        return DeltaTable(uri, storage_options=options)

    def _version_at(self, name: str, as_of: datetime) -> int:
        """The newest version committed at or before ``as_of`` (by the commit's own timestamp,
        which unlike object-store modification times has millisecond precision everywhere)."""
        limit_ms = as_of.timestamp() * 1000
        for commit in self._open(name).history():
            if commit.get("timestamp", 0) <= limit_ms:
                return int(commit["version"])
        raise TerminalError(f"table {name} has no version as of {as_of.isoformat()}")

    def _version_or_none(self, name: str) -> int | None:
        return self.version(name) if self.exists(name) else None

    def _merge_once(
        self,
        name: str,
        data: pa.Table,
        keys: Sequence[str],
        partition_by: Sequence[str] | None,
        update_existing: bool,
        none_stored: bool = False,
    ) -> MergeStats:
        table = self._open_or_none(name)
        if table is None:
            created = create_table(self.storage, name, data, partition_by)
            if created is not None:
                return created
            table = self._open(name)
        return merge_rows(table, name, data, keys, update_existing, none_stored)


def _file_ranges(table: DeltaTable) -> dict[str, tuple[object, object]]:
    """The table's files, as its Delta log names them, with the least and greatest symbol
    each holds (None when not recorded)."""
    import pyarrow as pa

    actions = pa.table(table.get_add_actions(flatten=True))
    paths = [str(path) for path in actions.column("path").to_pylist()]
    bounds = []
    for bound in ("min.symbol", "max.symbol"):
        present = bound in actions.column_names
        bounds.append(actions.column(bound).to_pylist() if present else [None] * len(paths))
    return dict(zip(paths, zip(bounds[0], bounds[1], strict=True), strict=True))


def _as_expression(
    filter: pc.Expression | Sequence[tuple[str, str, Any]] | None,
) -> pc.Expression | None:
    if filter is None:
        return None
    import pyarrow.compute as pc

    if isinstance(filter, pc.Expression):
        return filter
    import pyarrow.parquet as pq

    return pq.filters_to_expression(list(filter))
