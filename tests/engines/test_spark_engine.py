"""The Spark engine in whole runs: the Polars engine's results, its run record, its errors."""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from marketlake.analytics.adjust import apply_spans
from marketlake.catalogue import (
    ADJUSTMENT_FACTORS,
    BARS_1D,
    BARS_1D_ADJUSTED,
    CORPORATE_ACTIONS,
    DAILY_METRICS,
    INDICATORS_1D,
    MISSING_SESSIONS,
)
from marketlake.cli.run import run_pipeline
from marketlake.engines.base import EngineJob
from marketlake.engines.registry import create_engine
from marketlake.lake import LakeStorage, LakeTables
from marketlake.lake.snapshots import Snapshot
from marketlake.pipeline.reprocess import reprocess_snapshot
from marketlake.schemas import CORPORATE_ACTION_SCHEMA
from marketlake.settings import load_settings
from tests.engines.parity import assert_same, reference
from tests.engines.test_engine_contract import NOW, bars_for, split_of
from tests.pipeline.cli import marketlake_process
from tests.services.seaweedfs import SeaweedFS

ANALYTICS = (DAILY_METRICS, INDICATORS_1D)
REAL_FILES = (
    "AAPL_daily_adjusted_av_to-2020-12-04.csv",
    "TSLA_daily_adjusted_av_to-2020-12-04.csv",
)


def lake_of(home: Path) -> LakeTables:
    """The Delta tables of the lake under ``home``."""
    return LakeTables(LakeStorage.from_url((home / "lake").as_uri()))


def adjusted_of(tables: LakeTables, symbol: str | None = None) -> pa.Table:
    """The lake's bars (of ``symbol``, or all) adjusted by the factors the engine wrote."""
    wanted = pc.field("symbol") == symbol if symbol else None
    return apply_spans(tables.read(BARS_1D, filter=wanted), tables.read(ADJUSTMENT_FACTORS))


def run(home: Path, engine: str, **options: Any) -> None:
    """A whole ``marketlake run`` in this process (Spark joins the test session's Spark)."""
    report = run_pipeline(home=home, engine=engine, quiet=True, **options)
    assert report is not None and report.succeeded, [s.error for s in report.stages]


def process_detail(home: Path) -> dict[str, Any]:
    """The ``detail`` the last process stage recorded in the warehouse's runs table."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT detail FROM runs WHERE stage = 'process' ORDER BY started_at DESC LIMIT 1"
        ).fetchall()
    finally:
        con.close()
    detail: dict[str, Any] = json.loads(rows[0][0])
    return detail


def assert_same_analytics(spark_home: Path, local_home: Path) -> None:
    """Every derived table of the two homes holds the same rows (floats to 1e-9 relative)."""
    spark, local = lake_of(spark_home), lake_of(local_home)
    for dataset in (*ANALYTICS, MISSING_SESSIONS):
        assert spark.exists(dataset) == local.exists(dataset), dataset.name
        if not local.exists(dataset):
            continue
        columns = [c for c in dataset.columns if c != "detected_at"]
        assert_same(spark.read(dataset), local.read(dataset), columns)
    order = [("symbol", "ascending"), ("valid_from", "ascending")]
    spans = [tables.read(ADJUSTMENT_FACTORS).sort_by(order) for tables in (spark, local)]
    assert spans[0].equals(spans[1])
    assert_same(adjusted_of(spark), adjusted_of(local), BARS_1D_ADJUSTED.columns)


def test_a_default_run_on_spark_equals_the_polars_engine_and_is_recorded(
    spark_session: Any, tmp_path: Path
) -> None:
    run(tmp_path / "local", "local")
    run(tmp_path / "spark", "spark")
    assert_same_analytics(tmp_path / "spark", tmp_path / "local")
    assert lake_of(tmp_path / "spark").read(DAILY_METRICS).num_rows > 2_000
    detail = process_detail(tmp_path / "spark")
    assert detail["engine"] == "spark"
    assert detail["spark_version"] == spark_session.version
    assert detail["spark_master"] == "local[2]"
    assert detail["spark_app_id"] == spark_session.sparkContext.applicationId
    assert process_detail(tmp_path / "local")["engine"] == "local"


def test_real_files_with_splits_and_dividends_give_the_same_results(
    spark_session: Any, real_data: Path, tmp_path: Path
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    for name in REAL_FILES:
        shutil.copy(real_data / "daily" / "alphavantage_adjusted" / name, files / name)
    for engine in ("local", "spark"):
        run(tmp_path / engine, engine, source="csv", sources={"files": {"path": files}})
    assert_same_analytics(tmp_path / "spark", tmp_path / "local")
    adjusted = adjusted_of(lake_of(tmp_path / "spark"))
    factors = set(pc.unique(adjusted.column("price_factor")).to_pylist())
    assert len(factors) > 10  # AAPL's splits and dividends, TSLA's 2020 split


def test_a_wide_indicator_set_gives_identical_columns_on_both_engines(
    spark_session: Any, tmp_path: Path
) -> None:
    wide = Path(__file__).parents[2] / "docs" / "indicators-wide.toml"
    for engine in ("local", "spark"):
        home = tmp_path / engine
        home.mkdir()
        shutil.copy(wide, home / "marketlake.toml")
        run(home, engine, symbols="AAPL,MSFT,NVDA", start=date(2023, 6, 1), end=date(2024, 5, 31))
    local, spark = (
        lake_of(tmp_path / engine)
        .read(INDICATORS_1D)
        .sort_by([("symbol", "ascending"), ("ts", "ascending")])
        for engine in ("local", "spark")
    )
    assert len(local.column_names) == 2 + 46
    assert local.num_rows == 3 * 252  # sessions from 2023-06-01 to 2024-05-31
    assert spark.equals(local)  # the same TA-Lib calls on the same bars: bit for bit


def test_reprocess_on_spark_rebuilds_an_older_snapshot(spark_session: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    run(home, "local", symbols=["AAPL", "MSFT"])
    tables = lake_of(home)
    original = {d.name: tables.read(d) for d in (*ANALYTICS, ADJUSTMENT_FACTORS)}
    version = tables.version(BARS_1D)
    bars = tables.read(BARS_1D)
    doubled = bars.set_column(
        bars.schema.get_field_index("close"), "close", pc.multiply(bars["close"], 2.0)
    )
    tables.merge(BARS_1D, doubled, BARS_1D.keys)
    settings = load_settings(home=home, engine="spark")
    reprocess_snapshot(tables, Snapshot(version=version + 1), engine="spark", settings=settings)
    order = [("symbol", "ascending"), ("ts", "ascending")]
    changed = tables.read(DAILY_METRICS).sort_by(order).column("close")
    assert not changed.equals(original["daily_metrics"].sort_by(order)["close"])
    result = reprocess_snapshot(tables, Snapshot(version=version), engine="spark")
    assert result.rows["analytics/daily_metrics"] == original["daily_metrics"].num_rows
    for dataset in ANALYTICS:
        assert_same(tables.read(dataset), original[dataset.name], dataset.columns)
    spans = [original[ADJUSTMENT_FACTORS.name], tables.read(ADJUSTMENT_FACTORS)]
    by_start = [("symbol", "ascending"), ("valid_from", "ascending")]
    assert spans[1].sort_by(by_start).equals(spans[0].sort_by(by_start))


def test_doctor_checks_java_and_spark(spark_session: Any, tmp_path: Path) -> None:
    from marketlake.cli.doctor import _check_engine

    found = _check_engine(load_settings(home=tmp_path, engine="spark"))
    assert found.startswith("spark: Apache Spark")
    assert f"Spark {spark_session.version}, master local[2]" in found


def _without_java() -> dict[str, str]:
    """The environment with no ``java`` to find: only this interpreter's folder on PATH."""
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(Path(sys.executable).parent)
    assert shutil.which("java", path=env["PATH"]) is None
    env["COLUMNS"] = "400"
    return env


def test_without_java_the_commands_say_what_to_install(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    env = _without_java()
    proc = marketlake_process(
        "run", "--home", home, "--engine", "spark", "--symbols", "AAPL", env=env
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    said = " ".join(proc.stdout.split())
    assert "process failed" in said or "│ process │ failed" in said
    assert "no java on PATH and JAVA_HOME is not set" in said
    # The curated bars are in: reprocessing them on Spark fails the same way, in one line.
    proc = marketlake_process(
        "lake", "reprocess", "--as-of", "0", "--engine", "spark", "--home", home, env=env
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: the Spark engine needs Java: no java on PATH and JAVA_HOME is not set; "
        "install a Java 17+ runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) "
        "or set JAVA_HOME"
    ]
    doctor = marketlake_process("doctor", "--home", home, env={**env, "MARKETLAKE_ENGINE": "spark"})
    assert doctor.returncode == 1
    assert "openjdk-17-jre-headless" in doctor.stdout


def test_an_s3_lake_is_read_through_its_file_list_without_hadoop_aws(
    spark_session: Any, seaweedfs: SeaweedFS
) -> None:
    jvm = spark_session.sparkContext._jvm
    with pytest.raises(Exception, match="S3AFileSystem"):
        jvm.java.lang.Class.forName("org.apache.hadoop.fs.s3a.S3AFileSystem")
    storage = LakeStorage.from_url(f"s3://{seaweedfs.bucket}/spark-engine", seaweedfs.options())
    tables = LakeTables(storage)
    tables.merge(BARS_1D, bars_for({"AAPL": 60, "MSFT": 40}), BARS_1D.keys)
    tables.merge(CORPORATE_ACTIONS, split_of("AAPL", date(2023, 2, 1), 2.0), CORPORATE_ACTIONS.keys)
    engine = create_engine("spark")
    try:
        engine.process(EngineJob(tables=tables, symbols=("AAPL",), now=NOW))
    finally:
        engine.close()
    expected = reference(
        tables.read(BARS_1D, filter=pc.field("symbol") == "AAPL"),
        tables.read(CORPORATE_ACTIONS, columns=CORPORATE_ACTION_SCHEMA.names).cast(
            CORPORATE_ACTION_SCHEMA
        ),
    )
    for dataset in ANALYTICS:
        assert_same(tables.read(dataset), expected[dataset.name], dataset.columns)
    adjusted = adjusted_of(tables, "AAPL")
    assert_same(adjusted, expected[BARS_1D_ADJUSTED.name], BARS_1D_ADJUSTED.columns)
    assert set(adjusted.column("price_factor").to_pylist()) == {0.5, 1.0}
