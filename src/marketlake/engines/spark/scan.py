"""Spark reads of the lake's Delta tables through their file lists.

The Delta log of the chosen version names the live Parquet files, their partition values and
their per-file ``symbol`` range; only the files that may hold the job's symbols are read,
in parallel on the executors, so no Delta connector jar is needed. A lake on disk (or on a
filesystem every executor mounts) is read by Spark's own Parquet reader; a lake on S3 by a
Python data source that opens the same files with the lake's pyarrow S3 filesystem
(:mod:`.files_source`), so no ``hadoop-aws`` jar is needed either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from marketlake.lake.symbol_reads import holds_one_of

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from marketlake.catalogue import Dataset
    from marketlake.lake.tables import LakeTables


def snapshot_files(
    tables: LakeTables, dataset: Dataset, symbols: Sequence[str], version: int | None
) -> list[tuple[str, dict[str, object]]]:
    """The table's files at ``version`` that may hold ``symbols``: (path in the table folder,
    partition values)."""
    import pyarrow as pa
    from deltalake import DeltaTable

    table = DeltaTable(
        tables.storage.uri(dataset.lake_table),
        version=version,
        storage_options=tables.storage.storage_options(),
    )
    actions = pa.table(table.get_add_actions(flatten=True))
    wanted = sorted(set(symbols))
    low = _column(actions, "min.symbol")
    high = _column(actions, "max.symbol")
    partitions = [c for c in actions.column_names if c.startswith("partition.")]
    files = []
    for i, path in enumerate(actions.column("path").to_pylist()):
        if low is not None and high is not None and not holds_one_of(wanted, low[i], high[i]):
            continue
        values = {c.removeprefix("partition."): actions.column(c)[i].as_py() for c in partitions}
        files.append((path, values))
    return files


def _column(actions: pa.Table, name: str) -> list[object] | None:
    return actions.column(name).to_pylist() if name in actions.column_names else None


def read_table(
    spark: SparkSession,
    tables: LakeTables,
    dataset: Dataset,
    symbols: Sequence[str],
    version: int | None = None,
) -> DataFrame:
    """The rows of ``symbols`` in ``dataset``'s lake table at ``version``, as a DataFrame.

    Columns and types are the catalogue schema's (columns a file lacks read as NULL).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(dataset.schema)
    name = dataset.lake_table
    files = snapshot_files(tables, dataset, symbols, version)
    if not files:
        return spark.createDataFrame([], schema)
    storage = tables.storage
    if not storage.is_local:
        from marketlake.engines.spark.files_source import read_files

        located = [(storage.path(f"{name}/{path}"), values) for path, values in files]
        return read_files(spark, storage.filesystem, located, dataset.schema, symbols)
    root = storage.uri(name)
    stored = [f.name for f in dataset.schema]
    frames = []
    for values in _distinct([v for _, v in files]):
        paths = [f"{root}/{path}" for path, v in files if v == values]
        file_schema = from_arrow_schema(
            _without(dataset.schema, [column for column in values if column in stored])
        )
        frame = spark.read.schema(file_schema).parquet(*paths)
        for column, value in values.items():
            if column in stored:
                frame = frame.withColumn(column, F.lit(value).cast(schema[column].dataType))
        frames.append(frame.select(*stored))
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other)
    return frame.filter(F.col("symbol").isin(sorted(set(symbols))))


def _distinct(values: list[dict[str, object]]) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def _without(schema: pa.Schema, names: list[str]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([f for f in schema if f.name not in names])
