"""``marketlake airflow``: run the batch pipeline under Apache Airflow."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

airflow_app = typer.Typer(
    # "\\[" keeps Rich's markup from reading [airflow] as a style and dropping it
    help="Run the batch pipeline under Apache Airflow 3 (pip install 'marketlake\\[airflow]').",
    no_args_is_help=True,
)


@airflow_app.command("dag")
def dag(
    output: Annotated[
        Path, typer.Option("--output", help="The Airflow DAGs folder to write the DAG file to")
    ],
    start_date: Annotated[
        datetime,
        typer.Option(
            "--start-date", formats=["%Y-%m-%d"], help="First session the schedule may run for"
        ),
    ] = datetime(2024, 1, 2),
    catchup: Annotated[
        bool, typer.Option(help="Run every session since --start-date the scheduler missed")
    ] = False,
    retries: Annotated[int, typer.Option(help="Retries of a task after a transient error")] = 3,
    retry_delay: Annotated[
        float, typer.Option(help="Seconds before the first retry (doubling after each)")
    ] = 60.0,
) -> None:
    """Write the stock_market_pipeline DAG file into Airflow's DAGs folder."""
    from marketlake.airflow.dag_file import write_dag_file

    path = write_dag_file(
        output,
        start_date=start_date.date(),
        catchup=catchup,
        retries=retries,
        retry_delay_s=retry_delay,
    )
    sys.stdout.write(f"{path}\n")
