"""What a task hands its stage process: the run id and the run's plan."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from marketlake.airflow.task import marketlake_run_id, run_plan, warehouse_url
from marketlake.runspec import check_run_id, spec_path


def test_a_dag_run_id_becomes_a_run_id_that_names_lake_files() -> None:
    dag_run_id = "scheduled__2024-06-28T20:00:00+00:00"
    run_id = marketlake_run_id(dag_run_id)
    assert run_id.startswith("scheduled__2024-06-28T20-00-00+00-00-")
    assert check_run_id(run_id) == run_id
    assert spec_path(run_id) == f"_runs/{run_id}.json"
    assert marketlake_run_id(dag_run_id) == run_id  # a retried task finds the same run
    assert marketlake_run_id("nightly-1") == "nightly-1"
    assert len(marketlake_run_id("x" * 300)) <= 128


def test_params_come_first_then_the_sessions_of_the_data_interval() -> None:
    interval = {
        "data_interval_start": datetime(2024, 7, 3, 17, tzinfo=UTC),
        "data_interval_end": datetime(2024, 7, 5, 20, tzinfo=UTC),
    }
    assert run_plan({"params": {"symbols": "AAPL, MSFT", "source": "yahoo"}, **interval}) == {
        "source": "yahoo",
        "symbols": ["AAPL", "MSFT"],
        "start": "2024-07-05",
        "end": "2024-07-05",
    }
    params = {"start": "2024-01-02", "end": "2024-06-28", "symbols": ["JPM"]}
    assert run_plan({"params": params, **interval}) == {
        "source": None,
        "symbols": ["JPM"],
        "start": "2024-01-02",
        "end": "2024-06-28",
    }
    # a manual run without a logical date has no interval: marketlake's default range
    assert run_plan({"params": {}}) == {"source": None, "symbols": None, "start": None, "end": None}


@pytest.mark.parametrize(
    "url",
    [
        "duckdb:///tmp/marketlake/warehouse.duckdb",
        "duckdb://relative/warehouse.duckdb",
        "postgres://user:s%40cret@db.example:5432/market",
        "snowflake://user:pw@acct-1/MARKET/PUBLIC?warehouse=WH&role=LOADER",
    ],
)
def test_a_warehouse_url_survives_an_airflow_connection(url: str) -> None:
    from airflow.models.connection import Connection

    # Airflow parses the URI into fields and writes it back with the path percent-encoded
    uri = Connection(conn_id="marketlake_warehouse", uri=url).get_uri()
    assert warehouse_url(uri) == url
