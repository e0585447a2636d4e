"""The DAG run by Airflow's own command line, as a user tries it: ``airflow dags test``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.orchestration.conftest import AirflowSetup, airflow_command
from tests.pipeline.cli import marketlake, sql_json, warehouse_snapshot


def test_airflow_dags_test_runs_the_pipeline_for_a_session(
    airflow_setup: AirflowSetup, home: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "MARKETLAKE_HOME": str(home)}
    proc = subprocess.run(
        [*airflow_command(), "dags", "test", "stock_market_pipeline", "2024-07-02"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    days = sql_json(home, "SELECT CAST(ts AS DATE) AS day, count(*) AS n FROM bars_1d GROUP BY 1")
    assert [(r["day"], r["n"]) for r in days] == [("2024-07-02", 10)]
    runs = sql_json(home, "SELECT stage, status FROM runs ORDER BY stage")
    assert {(r["stage"], r["status"]) for r in runs} == {
        (stage, "succeeded")
        for stage in ("fetch_history", "consume_history", "process", "load_warehouse", "success")
    }

    reference = tmp_path / "reference"
    session = ("--start", "2024-07-02", "--end", "2024-07-02")
    ref = marketlake("run", "--home", str(reference), *session)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert warehouse_snapshot(home) == warehouse_snapshot(reference)
