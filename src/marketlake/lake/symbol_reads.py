"""Reading the rows of a set of symbols without scanning the whole table.

A pyarrow Dataset cannot push a symbol filter down to these tables: files written by MERGE
store strings as ``string_view``, files written from Arrow as ``string``, and pyarrow does not
compare statistics of mixed physical types. So the reader prunes by hand, on two levels of
statistics: the Delta log's per-file minimum and maximum ``symbol``, then each Parquet row
group's. Only the row groups whose symbol range holds a wanted symbol are read; rows of other
symbols are filtered out after. Tables sorted by symbol (derived tables are written one bucket
of symbols per file) read only the files of the bucket.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence, Set
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs
    from deltalake import DeltaTable

SYMBOL = "symbol"


def holds_one_of(wanted: list[str], low: object, high: object) -> bool:
    """True when the sorted ``wanted`` has a symbol in [low, high] (unknown bounds: True)."""
    if not isinstance(low, str) or not isinstance(high, str):
        return True
    i = bisect.bisect_left(wanted, low)
    return i < len(wanted) and wanted[i] <= high


def _row_groups(file: object, wanted: list[str]) -> list[int]:
    """The row groups of a Parquet file whose symbol statistics may hold a wanted symbol."""
    metadata = file.metadata  # type: ignore[attr-defined]
    names = [metadata.schema.column(i).name for i in range(metadata.num_columns)]
    if SYMBOL not in names:
        return list(range(metadata.num_row_groups))
    column = names.index(SYMBOL)
    chosen = []
    for i in range(metadata.num_row_groups):
        stats = metadata.row_group(i).column(column).statistics
        unknown = stats is None or not stats.has_min_max
        if unknown or holds_one_of(wanted, _text(stats.min), _text(stats.max)):
            chosen.append(i)
    return chosen


def _stat(actions: pa.Table, column: str) -> list[object] | None:
    """A statistics column of the Delta add actions as a list (None when not recorded)."""
    return actions.column(column).to_pylist() if column in actions.column_names else None


def _text(value: object) -> object:
    return value.decode() if isinstance(value, bytes) else value


def conform_columns(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns and types (missing columns as nulls)."""
    import pyarrow as pa

    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def read_symbols(
    table: DeltaTable,
    filesystem: pafs.FileSystem,
    symbols: Sequence[str],
    columns: Sequence[str] | None = None,
    only: Set[str] | None = None,
) -> pa.Table:
    """The rows of ``symbols`` in ``table``'s current (or loaded) version.

    ``filesystem`` is rooted at the table's folder. Columns follow the table's schema (only
    ``columns`` when given); strings are plain ``string`` whatever the files store. With
    ``only``, just the files of those paths (as the Delta log names them) are read.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    schema = pa.schema(table.schema().to_arrow())
    if columns is not None:
        schema = pa.schema([schema.field(name) for name in columns])
    wanted = sorted(set(symbols))
    value_set = pa.array(wanted, pa.string())
    full = pa.schema(table.schema().to_arrow())
    read_columns = list(schema.names)
    if SYMBOL not in read_columns:
        read_columns.append(SYMBOL)
    full = pa.schema([full.field(name) for name in read_columns])
    actions = pa.table(table.get_add_actions(flatten=True))
    low, high = (_stat(actions, f"{bound}.{SYMBOL}") for bound in ("min", "max"))
    parts = []
    paths = actions.column("path").to_pylist()
    for i in _in_symbol_order(len(paths), low, high):
        if only is not None and paths[i] not in only:
            continue
        if low is not None and high is not None and not holds_one_of(wanted, low[i], high[i]):
            continue
        with filesystem.open_input_file(paths[i]) as handle:
            file = pq.ParquetFile(handle, read_dictionary=[SYMBOL])
            groups = _row_groups(file, wanted)
            if not groups:
                continue
            present = [name for name in read_columns if name in file.schema_arrow.names]
            part = file.read_row_groups(groups, columns=present)
        keep = _is_in(part.column(SYMBOL), value_set)
        part = conform_columns(_decoded_symbols(part), full)  # no string_view: filter needs it
        if not pc.all(keep).as_py():  # a file of only wanted symbols needs no copy
            part = part.filter(keep)
        parts.append(part.select(schema.names))
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts)


def _in_symbol_order(count: int, low: list[object] | None, high: list[object] | None) -> list[int]:
    """The indexes of ``count`` add actions, files with lower symbol ranges first.

    The Delta log lists files in no useful order (newest commit first, here); read by symbol
    range, sorted files (derived tables are written one bucket of symbols per file) give
    their rows already in key order, so the writes that follow need not sort them. Files
    without statistics keep their order, after the others.
    """
    if low is None or high is None:
        return list(range(count))
    known = [i for i in range(count) if isinstance(low[i], str) and isinstance(high[i], str)]
    chosen = set(known)
    rest = [i for i in range(count) if i not in chosen]
    return sorted(known, key=lambda i: (str(low[i]), str(high[i]))) + rest


def _is_in(column: pa.ChunkedArray, value_set: pa.Array) -> pa.ChunkedArray:
    """Which rows of ``column`` (dictionary-encoded or plain) hold one of ``value_set``.

    For a dictionary column only its few distinct values are looked up.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    chunks = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            found = pc.is_in(chunk.dictionary.cast(pa.string()), value_set=value_set)
            chunks.append(pc.fill_null(pc.take(found, chunk.indices), False))
        else:
            chunks.append(pc.fill_null(pc.is_in(chunk, value_set=value_set), False))
    return pa.chunked_array(chunks, pa.bool_())


def _decoded_symbols(part: pa.Table) -> pa.Table:
    """``part`` with its dictionary-encoded ``symbol`` column as plain strings.

    The dictionary is cast first: files written by MERGE hold ``string_view`` values, which
    pyarrow cannot gather by index.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    column = part.column(SYMBOL)
    if not pa.types.is_dictionary(column.type):
        return part
    chunks = [pc.take(c.dictionary.cast(pa.string()), c.indices) for c in column.chunks]
    index = part.schema.get_field_index(SYMBOL)
    field = pa.field(SYMBOL, pa.string(), part.schema.field(index).nullable)
    return part.set_column(index, field, pa.chunked_array(chunks, pa.string()))


def count_symbols(
    table: DeltaTable, filesystem: pafs.FileSystem, symbols: Sequence[str]
) -> dict[str, int]:
    """Rows per symbol of ``symbols`` in ``table`` (symbols without rows are left out).

    Reads only the ``symbol`` column, dictionary-encoded, one row group at a time.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    wanted = sorted(set(symbols))
    chosen = set(wanted)
    counts: dict[str, int] = {}
    actions = pa.table(table.get_add_actions(flatten=True))
    low, high = (_stat(actions, f"{bound}.{SYMBOL}") for bound in ("min", "max"))
    for i, path in enumerate(actions.column("path").to_pylist()):
        if low is not None and high is not None and not holds_one_of(wanted, low[i], high[i]):
            continue
        with filesystem.open_input_file(path) as handle:
            file = pq.ParquetFile(handle, read_dictionary=[SYMBOL])
            for group in _row_groups(file, wanted):
                column = file.read_row_group(group, columns=[SYMBOL]).column(SYMBOL)
                for chunk in column.chunks:
                    for entry in pc.value_counts(chunk).to_pylist():
                        name = entry["values"]
                        if name in chosen:
                            counts[name] = counts.get(name, 0) + entry["counts"]
    return counts


def bucket_symbols(counts: Mapping[str, int], max_rows: int) -> list[list[str]]:
    """The symbols of ``counts`` in sorted order, cut into buckets of about ``max_rows`` rows
    (a symbol with more rows is a bucket of its own)."""
    out: list[list[str]] = []
    bucket: list[str] = []
    rows = 0
    for symbol in sorted(counts):
        if bucket and rows + counts[symbol] > max_rows:
            out.append(bucket)
            bucket, rows = [], 0
        bucket.append(symbol)
        rows += counts[symbol]
    if bucket:
        out.append(bucket)
    return out
