"""The Delta commits behind :class:`~marketlake.lake.tables.LakeTables` writes: creating a
table, one MERGE on natural keys, and replacing the rows a predicate selects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from marketlake.lake.merge import changed_predicate, conform_to
from marketlake.lake.merge import merge_predicate as on_keys

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable, WriterProperties

    from marketlake.lake.storage import LakeStorage


@dataclass(frozen=True)
class MergeStats:
    """What a write did: rows inserted and updated, and the table version it produced.

    ``version`` is None when nothing was written to a table that does not exist yet. For
    :meth:`LakeTables.replace_symbols`, ``inserted`` counts every row written. ``committed``
    is False when the write made no commit (a MERGE that changed nothing: ``version`` is then
    the version it read); ``table_id`` is the Delta id of the table written, when known.
    """

    inserted: int
    updated: int
    version: int | None
    committed: bool = True
    table_id: str | None = None


def table_schema(table: DeltaTable) -> pa.Schema:
    """The Arrow schema of the Delta table's current version."""
    import pyarrow as pa

    return pa.schema(table.schema().to_arrow())


ROW_GROUP_ROWS = 131_072
"""Rows per Parquet row group of the files marketlake writes. Files of rows in key order
(bars appended by ``consume_history``, derived tables) then let a read of a bucket of
symbols skip the row groups of other symbols by their statistics (see
:mod:`marketlake.lake.symbol_reads`) instead of reading whole files of 500,000 rows."""


COMPRESSION: Final = "LZ4_RAW"
"""The Parquet compression codec of every file marketlake writes to a lake table."""


def writer_properties(schema: pa.Schema, table: str | None = None) -> WriterProperties:
    """Parquet dictionary encoding for the columns whose values repeat (symbols, sources,
    timestamps, flags); byte-stream-split encoding for floating-point columns; the encodings
    the catalogue declares for lake table ``table`` override both (see
    :attr:`~marketlake.catalogue.Dataset.encodings`).

    Indicator values and adjusted prices rarely repeat, so the writer built a dictionary
    only to fall back to plain encoding: without it a third of the 500 x 10 year derived
    tables writes in 0.05-0.10 s instead of 0.12-0.33 s. Byte-stream-split puts the bytes of
    equal rank of every value together, so the exponent and high mantissa bytes, which vary
    little from one price to the next, compress: the four daily tables of 500 x 10 years take
    225 MB instead of 295 MB, written in the same time (figures in ``docs/decisions.md``).

    Pages are compressed with LZ4 (``LZ4_RAW``, the Parquet codec every current reader
    knows: pyarrow, Polars, DuckDB, delta-rs, Spark 3.4 and later) rather than delta-rs's
    default Snappy: the four daily tables of 500 x 10 years write in 0.65 s of CPU and 231 MB
    instead of 0.91 s and 309 MB. ZSTD level 1 made 214 MB for 1.18 s.
    """
    import pyarrow as pa
    from deltalake import ColumnProperties, WriterProperties

    from marketlake.catalogue import lake_encodings

    declared = lake_encodings(table) if table is not None else {}

    def properties(field: pa.Field) -> ColumnProperties:
        encoding = declared.get(field.name)
        if encoding == "delta":
            return ColumnProperties(dictionary_enabled=False, encoding="DELTA_BINARY_PACKED")
        if encoding == "dictionary":
            return ColumnProperties(dictionary_enabled=True)
        if pa.types.is_floating(field.type) and field.type.bit_width in (32, 64):
            return ColumnProperties(dictionary_enabled=False, encoding="BYTE_STREAM_SPLIT")
        return ColumnProperties(dictionary_enabled=not pa.types.is_decimal(field.type))

    return WriterProperties(
        max_row_group_size=ROW_GROUP_ROWS,
        compression=COMPRESSION,
        default_column_properties=ColumnProperties(dictionary_enabled=False),
        column_properties={field.name: properties(field) for field in schema},
    )


ONE_BATCH_BYTES = 1 << 30
"""Tables up to this size are handed to the writer as one record batch (see :func:`in_order`)."""


def in_order(data: pa.Table) -> pa.Table:
    """``data`` as one record batch, so the file keeps its row order.

    delta-rs writes the record batches of a table on several threads and puts them in the
    file in the order they finish: the bars of a lake-writer chunk, one batch per message,
    had 30-40 symbols out of place in every 500,000-row file, against the key order that
    row-group statistics and bucket reads count on. One batch is written in order, and
    faster (1 M rows in 200 batches: 0.15 s against 0.07 s in one). A table past
    :data:`ONE_BATCH_BYTES` (never a bucket of marketlake's own writes) is left in its
    batches rather than copied whole.
    """
    if data.num_rows == 0 or data.nbytes > ONE_BATCH_BYTES:
        return data
    if all(column.num_chunks <= 1 for column in data.columns):
        return data
    return data.combine_chunks()


def create_table(
    storage: LakeStorage, name: str, data: pa.Table, partition_by: Sequence[str] | None
) -> MergeStats | None:
    """Write ``data`` as the new table ``name``; None when another writer created it first."""
    from deltalake import write_deltalake
    from deltalake.exceptions import DeltaError

    try:
        write_deltalake(
            storage.uri(name),
            in_order(data),
            mode="error",
            partition_by=list(partition_by) if partition_by else None,
            storage_options=storage.storage_options(),
            writer_properties=writer_properties(data.schema, name),
        )
    except DeltaError as exc:
        if "already exists" in str(exc):
            return None
        raise
    return MergeStats(data.num_rows, 0, 0)


def merge_rows(
    table: DeltaTable,
    name: str,
    data: pa.Table,
    keys: Sequence[str],
    update_existing: bool,
    none_stored: bool = False,
) -> MergeStats:
    """One MERGE commit of ``data`` into ``table`` on ``keys``.

    Matched rows are updated only when their content changed (never when ``update_existing``
    is False); new columns of ``data`` extend the table's schema. ``none_stored``: the
    caller knows that the table holds none of ``data``'s keys.
    """
    source, evolves = conform_to(data, table_schema(table), name)
    before = table.version()
    if "symbol" in keys and (none_stored or not _may_hold(table, _symbols_of(source))):
        # no file holds (or can hold) a key of these rows: the MERGE would insert them all,
        # and an append does that without joining against the table (and keeps their order)
        return _append(table, name, source, evolves)
    merger = table.merge(
        source,
        on_keys(keys),
        source_alias="s",
        target_alias="t",
        merge_schema=evolves,
        streamed_exec=False,
        writer_properties=writer_properties(source.schema, name),
    )
    if update_existing and evolves:  # new columns: every matched row gets their values
        merger = merger.when_matched_update_all()
    elif update_existing:
        changed = changed_predicate(source.column_names, keys)
        if changed is not None:
            merger = merger.when_matched_update_all(predicate=changed)
    metrics = merger.when_not_matched_insert_all().execute()
    return MergeStats(
        int(metrics.get("num_target_rows_inserted", 0)),
        int(metrics.get("num_target_rows_updated", 0)),
        table.version(),
        committed=table.version() != before,
        table_id=str(table.metadata().id),
    )


def replace_rows(
    table: DeltaTable,
    name: str,
    data: pa.Table,
    predicate: str,
    symbols: Sequence[str] | None = None,
) -> MergeStats:
    """One commit that removes the rows matching SQL ``predicate`` and adds ``data``.

    ``symbols`` are the symbols ``predicate`` selects, when it selects by symbol: if the Delta
    log's file statistics show that no file can hold one of them, there is nothing to remove
    and the commit is a plain append (a predicate overwrite would scan the table).
    """
    from deltalake import write_deltalake

    source, evolves = conform_to(data, table_schema(table), name)
    properties = writer_properties(source.schema, name)
    if symbols is not None and not _may_hold(table, symbols):
        return _append(table, name, source, evolves)
    write_deltalake(
        table,
        in_order(source),
        mode="overwrite",
        predicate=predicate,
        schema_mode="merge" if evolves else None,
        writer_properties=properties,
    )
    return MergeStats(data.num_rows, 0, table.version(), table_id=str(table.metadata().id))


def _append(table: DeltaTable, name: str, data: pa.Table, evolves: bool) -> MergeStats:
    """Add ``data`` to ``table`` in one commit (new columns extend the schema)."""
    from deltalake import write_deltalake

    write_deltalake(
        table,
        in_order(data),
        mode="append",
        schema_mode="merge" if evolves else None,
        writer_properties=writer_properties(data.schema, name),
    )
    return MergeStats(data.num_rows, 0, table.version(), table_id=str(table.metadata().id))


def _symbols_of(data: pa.Table) -> list[str]:
    import pyarrow.compute as pc

    return [str(s) for s in pc.unique(data.column("symbol")).to_pylist()]


def _may_hold(table: DeltaTable, symbols: Sequence[str]) -> bool:
    """False only when every file's symbol statistics exclude all of ``symbols``."""
    import pyarrow as pa

    from marketlake.lake.symbol_reads import holds_one_of

    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return False
    if "min.symbol" not in actions.column_names or "max.symbol" not in actions.column_names:
        return True
    wanted = sorted(symbols)
    lows = actions.column("min.symbol").to_pylist()
    highs = actions.column("max.symbol").to_pylist()
    return any(holds_one_of(wanted, low, high) for low, high in zip(lows, highs, strict=True))
