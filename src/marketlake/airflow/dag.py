"""The ``stock_market_pipeline`` DAG: marketlake's five batch stages, one Airflow task each.

``fetch_history → consume_history → process → load_warehouse → success``; each task runs its
stage of the DAG run's marketlake run in a process of its own (:mod:`marketlake.airflow.task`).
Building the DAG imports Airflow and this package's light modules only, so parsing the DAG
file stays fast.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param

from marketlake.airflow.task import run_stage_task
from marketlake.airflow.timetable import ExchangeSessionTimetable
from marketlake.runspec import STAGE_NAMES

DAG_ID = "stock_market_pipeline"


def stock_market_pipeline(
    *,
    dag_id: str = DAG_ID,
    calendar: str = "XNYS",
    start_date: date = date(2024, 1, 2),
    catchup: bool = False,
    retries: int = 3,
    retry_delay: timedelta = timedelta(minutes=1),
) -> DAG:
    """The DAG: one run after each ``calendar`` session close, five tasks in a chain.

    Transient failures are retried ``retries`` times, ``retry_delay`` apart at first and
    twice as long each time; only one DAG run is active at a time (runs share the bus's
    consumer group), so a backfill runs its intervals one after the other.
    """
    with DAG(
        dag_id=dag_id,
        description="marketlake: fetch daily bars, land them in the lake, compute, load",
        schedule=ExchangeSessionTimetable(calendar),
        start_date=datetime.combine(start_date, datetime.min.time(), tzinfo=UTC),
        catchup=catchup,
        max_active_runs=1,
        default_args={
            "retries": retries,
            "retry_delay": retry_delay,
            "retry_exponential_backoff": 2.0,
        },
        params={
            "symbols": Param(
                None,
                type=["null", "array", "string"],
                description="symbols of the run (default: the configured symbols)",
            ),
            "source": Param(
                None,
                type=["null", "string"],
                description="history source: sim, csv, parquet, yahoo or alphavantage",
            ),
            "start": Param(
                None,
                type=["null", "string"],
                format="date",
                description="first session (default: the data interval's sessions)",
            ),
            "end": Param(
                None,
                type=["null", "string"],
                format="date",
                description="last session (default: the data interval's sessions)",
            ),
        },
        tags=["marketlake"],
    ) as dag:
        previous = None
        for stage in STAGE_NAMES:
            task = PythonOperator(
                task_id=stage,
                python_callable=run_stage_task,
                op_kwargs={"stage": stage},
            )
            if previous is not None:
                previous >> task
            previous = task
    return dag
