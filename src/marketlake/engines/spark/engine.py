"""The Spark engine: the job's bars scanned, adjusted and analysed on Spark, committed once.

Spark reads the snapshot's Parquet files itself (:mod:`.scan`), groups the bars and corporate
actions by symbol and runs the Polars engine's per-symbol kernels on each group
(``applyInArrow``, :mod:`.kernels`); the daily metrics are window functions over each
symbol's sessions (:mod:`.metrics`). The results stay on the executors (persisted) and come
to the driver one bucket of symbols at a time, each bucket's rows of each derived dataset
replacing the symbols' rows in one Delta commit (on background threads while the next
bucket comes over, through the same writer as the Polars engine):
a re-run, or a run after a kill, leaves every row once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marketlake.catalogue import (
    ADJUSTMENT_FACTORS,
    BARS_1D,
    BARS_1D_ADJUSTED,
    CORPORATE_ACTIONS,
    DAILY_METRICS,
    INDICATORS_1D,
    MISSING_SESSIONS,
)
from marketlake.engines.base import Engine, EngineJob, EngineResult
from marketlake.engines.lake_io import OutputWriter
from marketlake.lake.symbol_reads import bucket_symbols

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from marketlake.catalogue import Dataset
    from marketlake.engines.spark.session import SessionHandle
    from marketlake.settings import Settings, SparkSettings


class SparkEngine(Engine):
    """Computes the derived datasets on Spark (local mode or a cluster)."""

    name = "spark"

    def __init__(self, settings: SparkSettings | None = None) -> None:
        from marketlake.settings import SparkSettings

        self.settings = settings or SparkSettings()
        self._handle: SessionHandle | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None) -> SparkEngine:
        """The engine configured by the ``[spark]`` section."""
        return cls(settings.spark if settings is not None else None)

    @property
    def handle(self) -> SessionHandle:
        """The Spark session, started (or joined) on first use."""
        from marketlake.engines.spark.session import open_session

        if self._handle is None:
            self._handle = open_session(self.settings)
        return self._handle

    def check(self) -> str:
        """Start (or join) the session and describe it: Java, Spark version, master."""
        from marketlake.engines.spark.session import find_java

        facts = self.handle.describe()
        java = "java in the running session" if not self.handle.owned else str(find_java())
        return (
            f"Spark {facts['spark_version']}, master {facts['spark_master']}, "
            f"application {facts['spark_app_id']}, {java}"
        )

    def details(self) -> dict[str, Any]:
        """Spark version, master, application id and session start-up time of the job's run."""
        return self._handle.describe() if self._handle is not None else {}

    def process(self, job: EngineJob) -> EngineResult:
        """Compute and write the derived datasets of ``job`` on Spark."""
        from pyspark import StorageLevel

        bars = self._read(job, BARS_1D, job.bars_version)
        # Computed once and kept on the executors; counting the bars per symbol fills it.
        analysed = self._analyse(job, bars).persist(StorageLevel.MEMORY_AND_DISK)
        counts = {
            row["symbol"]: int(row["count"]) for row in analysed.groupBy("symbol").count().collect()
        }
        result = EngineResult(symbols=sorted(set(job.symbols) & set(counts)))
        result.rows_in = sum(counts[s] for s in result.symbols)
        outputs = [ADJUSTMENT_FACTORS, DAILY_METRICS, INDICATORS_1D]
        if job.expected is not None:
            outputs.append(MISSING_SESSIONS)
        for dataset in outputs:
            result.written[dataset.name] = 0
        if not result.symbols:
            analysed.unpersist()
            return result
        missing = self._missing(job, bars)
        if missing is not None:
            missing = missing.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            work = bucket_symbols({s: counts[s] for s in result.symbols}, job.bucket_rows)
            with OutputWriter(job) as writer:
                for done, bucket in enumerate(work, 1):
                    writer.submit(self._collect(analysed, missing, bucket, job), bucket)
                    job.progress(done, len(work))
            result.written.update(writer.written)
        finally:
            analysed.unpersist()
            if missing is not None:
                missing.unpersist()
        return result

    def close(self) -> None:
        """Stop the Spark session if this engine started it."""
        if self._handle is not None:
            self._handle.stop()
            self._handle = None

    # -- the Spark plan -----------------------------------------------------------------------

    def _read(self, job: EngineJob, dataset: Dataset, version: int | None) -> DataFrame:
        from marketlake.engines.spark.scan import read_table

        spark = self.handle.session
        if not job.tables.exists(dataset):
            from pyspark.sql.pandas.types import from_arrow_schema

            return spark.createDataFrame([], from_arrow_schema(dataset.schema))
        return read_table(spark, job.tables, dataset, job.symbols, version)

    def _analyse(self, job: EngineJob, bars: DataFrame) -> DataFrame:
        """Adjusted bars, indicators (per-symbol kernels) and daily metrics (windows)."""
        from pyspark.sql.pandas.types import from_arrow_schema

        from marketlake.engines.spark.kernels import analysed_schema, symbol_analyser
        from marketlake.engines.spark.metrics import with_daily_metrics

        no_actions = job.bars_version is not None and job.actions_version is None
        actions = self._read(
            job, CORPORATE_ACTIONS, job.actions_version if not no_actions else None
        )
        if no_actions:
            actions = actions.limit(0)
        analysed = (
            bars.groupBy("symbol")
            .cogroup(actions.groupBy("symbol"))
            .applyInArrow(
                symbol_analyser(job.indicators), from_arrow_schema(analysed_schema(job.indicators))
            )
        )
        return with_daily_metrics(analysed)

    def _missing(self, job: EngineJob, bars: DataFrame) -> DataFrame | None:
        """Each symbol's expected sessions without a bar (None when the job expects none)."""
        from pyspark.sql.pandas.types import from_arrow_schema

        from marketlake.engines.spark.kernels import missing_for_symbol
        from marketlake.schemas import MISSING_SESSION_SCHEMA

        expected, now = job.expected, job.now
        if expected is None:
            return None

        def find(rows: pa.Table) -> pa.Table:
            return missing_for_symbol(rows, expected, now)

        return (
            bars.select("symbol", "ts", "source")
            .groupBy("symbol")
            .applyInArrow(find, from_arrow_schema(MISSING_SESSION_SCHEMA))
        )

    def _collect(
        self, analysed: DataFrame, missing: DataFrame | None, bucket: list[str], job: EngineJob
    ) -> list[tuple[Any, pa.Table]]:
        """The bucket's rows of each derived dataset, on the driver, in catalogue schemas."""
        from pyspark.sql import functions as F

        from marketlake.analytics.adjust import factor_spans

        wanted = F.col("symbol").isin(bucket)
        rows = analysed.filter(wanted).toArrow()
        out = [
            (ADJUSTMENT_FACTORS, factor_spans(_conform(rows, BARS_1D_ADJUSTED.schema))),
            (DAILY_METRICS, _conform(rows, DAILY_METRICS.schema)),
        ]
        out.append((INDICATORS_1D, _conform(rows, job.indicators.schema)))
        if missing is not None:
            out.append(
                (
                    MISSING_SESSIONS,
                    _conform(missing.filter(wanted).toArrow(), MISSING_SESSIONS.schema),
                )
            )
        return out


def _conform(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """``rows``' columns of ``schema``, cast to it, sorted by (symbol, ts)."""
    table = rows.select(schema.names).cast(schema)
    return table.sort_by([("symbol", "ascending"), ("ts", "ascending")])
