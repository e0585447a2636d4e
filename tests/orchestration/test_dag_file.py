"""``marketlake airflow dag`` writes a DAG file that parses light and without import errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from marketlake.runspec import STAGE_NAMES
from tests.orchestration.conftest import AirflowSetup
from tests.pipeline.cli import marketlake

HEAVY = (
    "polars",
    "pyarrow",
    "duckdb",
    "deltalake",
    "exchange_calendars",
    "pandas",
    "marketlake.pipeline",
    "marketlake.calendar",
    "marketlake.warehouse",
)
PARSE = """
import json, runpy, sys
namespace = runpy.run_path(sys.argv[1])
dag = namespace["dag"]
print(json.dumps({
    "dag_id": dag.dag_id,
    "tasks": [t.task_id for t in dag.topological_sort()] if hasattr(dag, "topological_sort")
    else sorted(dag.task_ids),
    "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
    "heavy": [m for m in json.loads(sys.argv[2]) if m in sys.modules],
}))
"""


def test_dag_command_writes_the_dag_file(tmp_path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path / "dags"
    proc = marketlake(
        "airflow", "dag", "--output", str(folder), "--retries", "5", "--retry-delay", "30",
        "--start-date", "2024-03-01", "--catchup",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    path = folder / "stock_market_pipeline.py"
    assert proc.stdout.strip() == str(path)
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    dag = bag.dags["stock_market_pipeline"]
    assert (dag.start_date, dag.catchup, dag.max_active_runs) == (
        datetime(2024, 3, 1, tzinfo=UTC),
        True,
        1,
    )
    assert {(t.retries, t.retry_delay, t.retry_exponential_backoff) for t in dag.tasks} == {
        (5, timedelta(seconds=30), 2.0)
    }


def test_the_dag_file_imports_nothing_heavy(airflow_setup: AirflowSetup) -> None:
    dag_file = airflow_setup.dags / "stock_market_pipeline.py"
    proc = subprocess.run(
        [sys.executable, "-c", PARSE, str(dag_file), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    parsed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert parsed["heavy"] == []
    assert parsed["dag_id"] == "stock_market_pipeline"
    stages = list(STAGE_NAMES)
    assert parsed["upstream"] == {
        stage: ([stages[i - 1]] if i else []) for i, stage in enumerate(stages)
    }


def test_dagbag_has_no_import_errors(airflow_setup: AirflowSetup) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    bag = DagBag(dag_folder=str(airflow_setup.dags))
    assert bag.import_errors == {}
    dag = bag.dags["stock_market_pipeline"]
    assert sorted(dag.task_ids) == sorted(STAGE_NAMES)
    # the scheduler reads the DAG back only if the plugin registered its timetable
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert restored.timetable.summary == "after each XNYS close"


def test_dag_command_refuses_a_file_as_folder(tmp_path: Path) -> None:
    target = tmp_path / "file.py"
    target.write_text("")
    proc = marketlake("airflow", "dag", "--output", str(target))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: --output {target} is a file: pass the Airflow DAGs folder"
    ]
