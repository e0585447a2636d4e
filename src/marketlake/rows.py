"""Rows keyed by a natural key: one last-row-wins de-duplication for every write.

Lake MERGEs and warehouse loads both need each key at most once in the rows they write;
:func:`deduplicate` is the one way to get there.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc


def deduplicate(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    """Keep the last row of each key; the result is ordered by ``keys``.

    Rows already in key order cost one vectorised pass over the key columns (derived tables
    arrive sorted by symbol and ts), and are returned as they are when no key repeats; other
    rows are sorted first (a stable sort, so "last" keeps its input meaning). Key columns are
    expected to hold no nulls.
    """
    if table.num_rows < 2:
        return table
    ordered, same = compare_neighbours(table, keys)
    if not pc.all(ordered).as_py():
        table = table.take(pc.sort_indices(table, [(key, "ascending") for key in keys]))
        _, same = compare_neighbours(table, keys)
    if not pc.any(same).as_py():
        return table
    keep = pc.invert(pa.concat_arrays([same, pa.array([False])]))
    return table.filter(keep)


def compare_neighbours(table: pa.Table, keys: Sequence[str]) -> tuple[pa.Array, pa.Array]:
    """For each row but the last: is it <= the next row by ``keys``, and is its key equal?"""
    n = table.num_rows
    ordered: pa.Array | None = None
    same: pa.Array | None = None
    for key in reversed(keys):
        column = table.column(key).combine_chunks()
        this, after = column.slice(0, n - 1), column.slice(1)
        equal = pc.equal(this, after)
        if ordered is None or same is None:
            ordered, same = pc.less_equal(this, after), equal
        else:
            ordered = pc.or_(pc.less(this, after), pc.and_(equal, ordered))
            same = pc.and_(equal, same)
    assert ordered is not None and same is not None
    return ordered, same
