"""What a warehouse already holds of the lake: per batch dataset and symbol, the lake table
(its Delta id) and version its rows were loaded from, and how many rows that was (the
``lake_loads`` table).

``load_warehouse`` skips a symbol's rows of a dataset when the lake table is still the same
table at the recorded version and the warehouse still holds the recorded number of rows for
the symbol: a lake table deleted and created again, or a warehouse table dropped, emptied or
recreated, loads again. A mark is recorded only for rows known to be the lake's at that
very version, once they are loaded: rows read from the lake at that version, or rows another
stage of the same process handed over in memory when every commit to the table since they
were committed was this process's own (``LakeTables.only_own_since``); other handed-over
rows are loaded without a mark (the next run reads them from the lake and marks them).
Marks are written after their rows' transactions (``load_warehouse`` writes a bucket's marks
at once, after its loads): a load killed in between leaves those rows unmarked, loaded
again by the next run. Two loads of the same symbols racing into one
warehouse could still leave one's mark over the other's rows (the row count catches it when
the two differ in rows).

When the lake table is the same table at a later version and every commit since the mark
only added files (bars appended by ``consume_history``, say), only the rows of the added
files are loaded, inserted beside the marked ones (see
:meth:`~marketlake.lake.tables.LakeTables.read_symbols_added`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import LAKE_LOADS, Dataset
from marketlake.lake.tables import TableState
from marketlake.warehouse.base import Warehouse


@dataclass
class LoadMarks:
    """The marks of one warehouse, read once per load; :meth:`record` writes new ones."""

    held: dict[tuple[str, str], tuple[TableState, int]]  # (dataset, symbol) -> (state, rows)
    _unwritten: list[dict[str, object]] = field(default_factory=list)

    @classmethod
    def read(cls, warehouse: Warehouse) -> LoadMarks:
        """The marks ``warehouse`` holds (none in a warehouse without the table yet)."""
        if LAKE_LOADS.name not in warehouse.table_names():
            return cls({})
        table = warehouse.quote(LAKE_LOADS.name)
        rows = warehouse.query(
            f"SELECT dataset, symbol, lake_table_id, lake_version, row_count FROM {table}"
        ).to_pylist()
        held: dict[tuple[str, str], tuple[TableState, int]] = {}
        for row in rows:
            if None in (row["lake_table_id"], row["lake_version"], row["row_count"]):
                continue
            state = TableState(str(row["lake_table_id"]), int(row["lake_version"]))
            held[(str(row["dataset"]), str(row["symbol"]))] = (state, int(row["row_count"]))
        return cls(held)

    def loaded_as(
        self, warehouse: Warehouse, dataset: Dataset, state: TableState, symbols: Sequence[str]
    ) -> dict[str, tuple[TableState, int]]:
        """Those of ``symbols`` whose rows of ``dataset`` the warehouse holds as a version (up
        to ``state``'s) of the lake table in ``state`` had them: the mark, with the marked
        number of rows still there. A mark at ``state`` itself means the rows are unchanged;
        an older one, that the lake may have gained rows since."""
        marked: dict[str, tuple[TableState, int]] = {}
        for symbol in symbols:
            mark = self.held.get((dataset.name, symbol))
            if mark is None or mark[0].table_id != state.table_id:
                continue
            if mark[0].version <= state.version:
                marked[symbol] = mark
        if not marked:
            return {}
        counts = warehouse.symbol_counts(dataset.name, list(marked))
        return {symbol: mark for symbol, mark in marked.items() if counts.get(symbol, 0) == mark[1]}

    def record(
        self,
        warehouse: Warehouse,
        dataset: Dataset,
        state: TableState,
        symbols: Iterable[str],
        data: pa.Table,
        at: datetime,
        before: Mapping[str, int] | None = None,
        *,
        hold: bool = False,
    ) -> None:
        """Mark ``data``, every row of ``symbols`` in ``dataset``'s lake table in ``state``,
        as loaded into ``warehouse`` (just after its rows were); with ``before``, ``data`` are
        the rows added to the ``before`` rows per symbol the warehouse held already. With
        ``hold``, the mark waits for the next :meth:`write` (one upsert for several)."""
        counts: dict[str, int] = dict(before or {})
        if data.num_rows:
            for row in pc.value_counts(data.column("symbol")).to_pylist():
                symbol = str(row["values"])
                counts[symbol] = counts.get(symbol, 0) + int(row["counts"])
        rows = [
            {
                "dataset": dataset.name,
                "symbol": symbol,
                "lake_table_id": state.table_id,
                "lake_version": state.version,
                "row_count": counts.get(symbol, 0),
                "loaded_at": at,
            }
            for symbol in symbols
        ]
        self._unwritten += rows
        if not hold:
            self.write(warehouse)

    def write(self, warehouse: Warehouse) -> None:
        """Write the marks recorded with ``hold``, if any."""
        rows, self._unwritten = self._unwritten, []
        if rows:
            warehouse.upsert(LAKE_LOADS.name, pa.Table.from_pylist(rows, schema=LAKE_LOADS.schema))
