"""What a stage committed to the lake, kept in memory for the next stage of the same process.

A stage that writes a lake table puts the rows it committed, symbol by symbol, into the
run's :class:`Handover`; the next stage in the same process takes them from there instead of
reading the lake back. A stage run alone (a fresh process) finds the handover empty and reads
the lake: results are the same either way, because a symbol is only ever handed over with
*every* row the lake holds for it after the commit.

The handover holds at most ``max_rows`` rows (about 100 bytes each for daily bars). A put
that would pass the limit drops that dataset from the handover for the rest of the process,
so memory stays bounded and the next stage reads that dataset from the lake.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

if TYPE_CHECKING:
    import pyarrow as pa

    from marketlake.catalogue import Dataset
    from marketlake.lake.tables import TableState


P = ParamSpec("P")
R = TypeVar("R")


def _locked(
    method: Callable[Concatenate[Handover, P], R],
) -> Callable[Concatenate[Handover, P], R]:
    """``method`` run holding its handover's lock."""

    @functools.wraps(method)
    def run(self: Handover, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            return method(self, *args, **kwargs)

    return run


class Handover:
    """Per dataset and symbol, the rows the lake holds after this process's last commit."""

    def __init__(self, max_rows: int) -> None:
        import threading

        self.max_rows = max_rows
        # the lake writer hands bars over from its commit thread while it checks the next
        # chunk, which takes other symbols' rows: each call sees the handover whole
        self._lock = threading.RLock()
        self._parts: dict[str, dict[str, pa.Table]] = {}
        self._dropped: set[str] = set()
        self._states: dict[str, dict[str, TableState]] = {}
        self._rows = 0

    @property
    def rows(self) -> int:
        """Rows held, across datasets."""
        return self._rows

    @_locked
    def put(
        self,
        dataset: Dataset,
        table: pa.Table,
        symbols: Iterable[str],
        at: TableState | None = None,
    ) -> None:
        """Hand over ``table``: every row the lake now holds for ``symbols`` (which may be
        none for some of them) in ``dataset``. Earlier rows of those symbols are replaced.
        ``at`` is the lake table's state (a commit of this process) the rows are of, when
        known (see :meth:`held_at`)."""
        import pyarrow.compute as pc

        name = dataset.name
        wanted = set(symbols)
        self.discard(dataset, wanted)
        if name in self._dropped or not wanted:
            return
        if self._rows + table.num_rows > self.max_rows:
            self.drop(dataset)
            return
        found: dict[str, pa.Table] = {}
        if table.num_rows:
            column = table.column("symbol").combine_chunks()
            if not _grouped(column):
                table = _group(table, column)
                column = table.column("symbol").combine_chunks()
            begin = 0
            for end in pc.run_end_encode(column).run_ends.to_pylist():
                found[str(column[begin].as_py())] = table.slice(begin, end - begin)
                begin = end
        if not set(found) <= wanted:
            self.drop(dataset)  # rows of symbols not announced: not a complete picture
            return
        empty = table.slice(0, 0)
        parts = self._parts.setdefault(name, {})
        states = self._states.setdefault(name, {})
        for symbol in wanted:
            parts[symbol] = found.get(symbol, empty)
            if at is None:
                states.pop(symbol, None)
            else:
                states[symbol] = at
        self._rows += table.num_rows

    @_locked
    def take(self, dataset: Dataset, symbols: Sequence[str]) -> pa.Table | None:
        """Every row of ``symbols`` in ``dataset``, or None unless all of them are held."""
        import pyarrow as pa

        parts = self._parts.get(dataset.name)
        if parts is None or any(symbol not in parts for symbol in symbols):
            return None
        tables = [parts[symbol] for symbol in symbols]
        if not tables:
            return None
        return pa.concat_tables(tables, promote_options="permissive")

    @_locked
    def counts(self, dataset: Dataset, symbols: Sequence[str]) -> dict[str, int] | None:
        """Rows per symbol of ``symbols`` held for ``dataset`` (symbols without rows left
        out), or None unless all of them are held."""
        parts = self._parts.get(dataset.name)
        if parts is None or any(symbol not in parts for symbol in symbols):
            return None
        return {symbol: parts[symbol].num_rows for symbol in symbols if parts[symbol].num_rows}

    @_locked
    def held_at(self, dataset: Dataset, symbols: Sequence[str]) -> TableState | None:
        """The oldest lake state the held rows of ``symbols`` in ``dataset`` were put at, or
        None when one of them was put without one (or states of two tables are mixed).

        Held rows stay the lake's rows for as long as only this process commits to the table:
        when every commit since that state is this process's own, they are the rows of the
        table's current state too."""
        states = self._states.get(dataset.name, {})
        found = [states.get(symbol) for symbol in symbols]
        if not found or any(state is None for state in found):
            return None
        known = [state for state in found if state is not None]
        if len({state.table_id for state in known}) > 1:
            return None
        return min(known, key=lambda state: state.version)

    @_locked
    def holds(self, dataset: Dataset, symbols: Sequence[str]) -> bool:
        """True when every row of ``symbols`` in ``dataset`` is held."""
        parts = self._parts.get(dataset.name)
        return parts is not None and all(symbol in parts for symbol in symbols)

    @_locked
    def discard(self, dataset: Dataset, symbols: Iterable[str]) -> None:
        """Forget ``symbols``' rows of ``dataset`` (the lake changed for them)."""
        parts = self._parts.get(dataset.name)
        if parts is None:
            return
        states = self._states.get(dataset.name, {})
        for symbol in symbols:
            states.pop(symbol, None)
            part = parts.pop(symbol, None)
            if part is not None:
                self._rows -= part.num_rows

    @_locked
    def drop(self, dataset: Dataset) -> None:
        """Forget ``dataset`` for the rest of the process (its next stage reads the lake)."""
        parts = self._parts.pop(dataset.name, {})
        self._states.pop(dataset.name, None)
        self._rows -= sum(part.num_rows for part in parts.values())
        self._dropped.add(dataset.name)

    @_locked
    def clear(self) -> None:
        """Forget everything held (nothing is dropped for good)."""
        self._parts.clear()
        self._states.clear()
        self._rows = 0


def _group(table: pa.Table, column: pa.Array) -> pa.Table:
    """``table`` with the rows of each symbol together, in their order (symbols in the order
    they first appear): a stable sort of integer codes, not of the strings."""
    import numpy as np
    import pyarrow.compute as pc

    codes = pc.dictionary_encode(column).indices.to_numpy(zero_copy_only=False)
    return table.take(np.argsort(codes, kind="stable"))


def _grouped(column: pa.Array) -> bool:
    """True when equal symbols are adjacent (the column is sorted, as written tables are)."""
    import pyarrow.compute as pc

    if len(column) < 2:
        return True
    return bool(pc.all(pc.less_equal(column.slice(0, len(column) - 1), column.slice(1))).as_py())
