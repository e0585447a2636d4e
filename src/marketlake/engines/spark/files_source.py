"""A Spark data source reading a list of lake Parquet files through pyarrow's filesystem.

Spark's own Parquet reader opens ``file://`` paths (and ``s3a://`` with the hadoop-aws jar);
for a lake on S3 without that jar, this Python data source reads the same file list on the
executors with the lake's pyarrow ``S3FileSystem``: one input partition per file, Arrow
record batches out. The filesystem (with its keys) travels inside the pickled source
class, never as a Spark option, so it does not show in plans or the Spark UI.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs
    from pyspark.sql import DataFrame, SparkSession


def read_files(
    spark: SparkSession,
    filesystem: pafs.FileSystem,
    files: Sequence[tuple[str, dict[str, object]]],
    schema: pa.Schema,
    symbols: Sequence[str],
) -> DataFrame:
    """The rows of ``symbols`` in ``files`` (filesystem paths with partition values)."""
    from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
    from pyspark.sql.pandas.types import from_arrow_schema

    spark_schema = from_arrow_schema(schema)
    name = f"marketlake_lake_files_{uuid.uuid4().hex[:12]}"
    wanted = sorted(set(symbols))
    listed = [(path, dict(values)) for path, values in files]

    class FilesReader(DataSourceReader):
        def partitions(self) -> Sequence[InputPartition]:
            return [InputPartition(i) for i in range(len(listed))]

        def read(self, partition: InputPartition) -> Iterator[Any]:
            path, values = listed[partition.value]
            yield from read_file(filesystem, path, values, schema, wanted)

    class FilesSource(DataSource):
        @classmethod
        def name(cls) -> str:
            return name

        def schema(self) -> Any:
            return spark_schema

        def reader(self, schema: Any) -> FilesReader:
            return FilesReader()

    spark.dataSource.register(FilesSource)
    return spark.read.format(name).load()


def read_file(
    filesystem: pafs.FileSystem,
    path: str,
    values: dict[str, object],
    schema: pa.Schema,
    symbols: list[str],
) -> Iterator[pa.RecordBatch]:
    """One file's record batches of ``symbols``, in ``schema`` (partition values filled in)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from marketlake.lake.symbol_reads import conform_columns

    wanted = pa.array(symbols, pa.string())
    with filesystem.open_input_file(path) as handle:
        file = pq.ParquetFile(handle)
        for batch in file.iter_batches():
            table = pa.Table.from_batches([batch])
            for column, value in values.items():
                if column in schema.names and column not in table.column_names:
                    field = schema.field(column)
                    table = table.append_column(
                        column, pa.array([value] * table.num_rows).cast(field.type)
                    )
            table = conform_columns(table, schema)
            table = table.filter(pc.is_in(table.column("symbol"), value_set=wanted))
            yield from table.to_batches()
