"""The Spark process stage killed mid-way, then re-run by ``spark-submit``: every row once.

The re-run goes through the job entry point a cluster would run (``spark-submit`` with the
run's id), so it also proves the stored run spec carries everything the job needs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

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
from marketlake.cli.spark_job import main as spark_job_main
from marketlake.schemas import CORPORATE_ACTION_SCHEMA
from tests.engines.parity import assert_same, reference
from tests.engines.test_spark_engine import lake_of, process_detail
from tests.pipeline.cli import marketlake_process

ARGS = ["--start", "2023-01-03", "--end", "2023-12-29", "--symbols", "AAPL,MSFT,TSLA,NVDA"]
# About one symbol per bucket: the stage commits symbol by symbol, so a kill lands mid-way.
SMALL_BUCKETS = {"MARKETLAKE_RUNNER__BUCKET_ROWS": "300"}
RUN = [sys.executable, "-m", "marketlake", "run"]
SUBMIT_CONF = [
    *("--master", "local[2]"),
    *("--conf", "spark.ui.enabled=false"),
    *("--conf", "spark.sql.shuffle.partitions=2"),
]


def spark_submit() -> Path:
    """The ``spark-submit`` script that comes with PySpark (skip without PySpark or Java)."""
    pyspark = pytest.importorskip("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("the Spark tests need Java 17+ (apt-get install openjdk-17-jre-headless)")
    return Path(pyspark.__file__).parent / "bin" / "spark-submit"


def plan_and_ingest(home: Path) -> str:
    """Plan a Spark run, run its ingest stages; return its id."""
    proc = marketlake_process("run", "--plan", "--engine", "spark", "--home", str(home), *ARGS)
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    for stage in ("fetch_history", "consume_history"):
        report = run_pipeline(home=home, run_id=run_id, stage=stage, quiet=True)
        assert report is not None and report.succeeded
    return run_id


def kill_once_committed(home: Path, run_id: str) -> int:
    """Start the process stage; SIGKILL it (and its JVM) once its first commit is in."""
    first_commit = home / "lake" / "analytics" / "adjustment_factors" / "_delta_log"
    proc = subprocess.Popen(
        [*RUN, "--home", str(home), "--quiet", "--run-id", run_id, "--stage", "process"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **SMALL_BUCKETS},
        start_new_session=True,
    )
    try:
        while proc.poll() is None and not any(first_commit.glob("*.json")):
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()


def test_a_killed_spark_process_stage_rerun_by_spark_submit_leaves_every_row_once(
    tmp_path: Path,
) -> None:
    submit = spark_submit()
    home = tmp_path / "home"
    run_id = plan_and_ingest(home)
    assert kill_once_committed(home, run_id) == -signal.SIGKILL
    tables = lake_of(home)
    done = set(tables.read(ADJUSTMENT_FACTORS, columns=["symbol"]).column("symbol").to_pylist())
    assert done < {"AAPL", "MSFT", "TSLA", "NVDA"}  # killed before the last bucket

    job = Path(spark_job_main.__code__.co_filename)
    proc = subprocess.run(
        [str(submit), *SUBMIT_CONF, str(job), "--run-id", run_id, "--home", str(home)],
        capture_output=True,
        text=True,
        env={**os.environ, **SMALL_BUCKETS, "PYSPARK_PYTHON": sys.executable},
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]

    expected = reference(
        tables.read(BARS_1D),
        tables.read(CORPORATE_ACTIONS, columns=CORPORATE_ACTION_SCHEMA.names).cast(
            CORPORATE_ACTION_SCHEMA
        ),
    )
    for dataset in (ADJUSTMENT_FACTORS, DAILY_METRICS, INDICATORS_1D, MISSING_SESSIONS):
        if dataset is MISSING_SESSIONS and not tables.exists(dataset):
            continue  # the simulator trades every session
        stored = tables.read(dataset)
        at = stored[dataset.keys[1]]
        keys = pc.binary_join_element_wise(stored["symbol"], pc.cast(at, "string"), "|")
        assert len(pc.unique(keys)) == stored.num_rows, f"{dataset.name} holds a row twice"
        if dataset.name in expected:
            assert_same(stored, expected[dataset.name], dataset.columns)
    adjusted = apply_spans(tables.read(BARS_1D), tables.read(ADJUSTMENT_FACTORS))
    assert_same(adjusted, expected[BARS_1D_ADJUSTED.name], BARS_1D_ADJUSTED.columns)
    detail = process_detail(home)
    assert detail["engine"] == "spark"
    assert detail["spark_master"] == "local[2]"
    assert detail["spark_app_id"].startswith("local-")


def test_doctor_starts_spark_as_the_spark_settings_say(tmp_path: Path) -> None:
    spark_submit()  # skips without PySpark or Java
    env = {
        "MARKETLAKE_ENGINE": "spark",
        "MARKETLAKE_SPARK__MASTER": "local[1]",
        "MARKETLAKE_SPARK__APP_NAME": "marketlake-doctor-check",
        "COLUMNS": "400",
    }
    proc = marketlake_process("doctor", "--home", str(tmp_path / "home"), env=env)
    engine_rows = [line for line in proc.stdout.splitlines() if "Apache Spark" in line]
    assert engine_rows and "ok" in engine_rows[0], proc.stdout
    said = " ".join(proc.stdout.split())
    assert "master local[1], application local-" in said
    assert "/bin/java" in said
