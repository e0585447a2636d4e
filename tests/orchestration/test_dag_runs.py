"""The DAG on real Airflow (``dag.test()``): five tasks, each stage in its own process.

Each DAG run leaves the warehouse a ``marketlake run`` of the same spec leaves; a stage
process killed mid-way is retried by Airflow and every row ends up once; a throttled
provider makes the task fail with a transient error, Airflow retries it, and it succeeds.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from marketlake.runspec import STAGE_NAMES
from tests.orchestration.conftest import AirflowSetup
from tests.pipeline.cli import marketlake, sql_json, warehouse_snapshot
from tests.pipeline.test_providers_e2e import no_later_splits
from tests.providers.replay import ProviderServer, Reply, Seen

CHART = "/v8/finance/chart/"
SHORT_BODY = "yahoo_chart/bodies/chart-{symbol}-2020-01-01-to-2020-01-03.body.json"
LONG_BODY = "yahoo_chart/bodies/chart-AAPL-2020-08-31-to-2020-11-07.body.json"


@pytest.fixture
def dag(airflow_setup: AirflowSetup) -> Any:
    """The ``stock_market_pipeline`` DAG as Airflow parses it from the DAGs folder (parsed
    for each test: ``dag.test()`` keeps a run's params in the DAG object)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(airflow_setup.dags))
    assert bag.import_errors == {}
    return bag.dags["stock_market_pipeline"]


@pytest.fixture
def ml_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The marketlake home the tasks' processes use (``MARKETLAKE_HOME``)."""
    monkeypatch.setenv("MARKETLAKE_HOME", str(home))
    yield home


def run_dag(dag: Any, day: str, **params: object) -> dict[str, Any]:
    """``dag.test()`` for logical date ``day`` with ``params``; each task's state and tries."""
    logical = datetime.fromisoformat(day).replace(tzinfo=UTC)
    dag_run = dag.test(logical_date=logical, run_conf=params or None)
    return {ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()} | {
        "_state": str(dag_run.state)
    }


def succeeded(tries: dict[str, int] | None = None) -> dict[str, Any]:
    """Every task succeeded, each after the given number of tries (1 unless given)."""
    tries = tries or {}
    return {stage: ("success", tries.get(stage, 1)) for stage in STAGE_NAMES} | {
        "_state": "success"
    }


def runs(home: Path) -> list[dict[str, Any]]:
    rows = sql_json(home, "SELECT run_id, stage, status, attempt, detail FROM runs")
    for row in rows:
        row["detail"] = json.loads(row["detail"])
    return rows


def test_a_manual_run_with_params_equals_marketlake_run(
    dag: Any, ml_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the warehouse comes from an Airflow connection: a DuckDB file
    connection = f"duckdb://{ml_home.resolve()}/from-connection.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_MARKETLAKE_WAREHOUSE", connection)
    spec = {"symbols": "AAPL,MSFT,JPM", "start": "2024-01-02", "end": "2024-06-28"}
    assert run_dag(dag, "2024-07-10", **spec) == succeeded()
    assert not (ml_home / "warehouse.duckdb").exists()
    (ml_home / "from-connection.duckdb").rename(ml_home / "warehouse.duckdb")

    reference = tmp_path / "reference"
    args = ["--symbols", spec["symbols"], "--start", spec["start"], "--end", spec["end"]]
    proc = marketlake("run", "--home", str(reference), *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = warehouse_snapshot(reference)
    assert expected["bars_1d"] and expected["indicators_1d"]
    assert warehouse_snapshot(ml_home) == expected

    rows = runs(ml_home)
    assert sorted((r["stage"], r["status"], r["attempt"]) for r in rows) == sorted(
        (stage, "succeeded", 1) for stage in STAGE_NAMES
    )
    assert len({r["run_id"] for r in rows}) == 1
    # each stage ran in a process of its own
    pids = {r["detail"]["pid"] for r in rows}
    assert len(pids) == len(STAGE_NAMES) and os.getpid() not in pids


def test_scheduled_intervals_load_their_sessions_once(
    dag: Any, ml_home: Path, tmp_path: Path
) -> None:
    # one run per interval; a Saturday stands for the Friday session before it
    assert run_dag(dag, "2024-06-27") == succeeded()
    assert run_dag(dag, "2024-06-29") == succeeded()
    days = sql_json(
        ml_home, "SELECT CAST(ts AS DATE) AS day, count(*) AS n FROM bars_1d GROUP BY 1"
    )
    assert sorted((r["day"], r["n"]) for r in days) == [("2024-06-27", 10), ("2024-06-28", 10)]
    assert len({r["run_id"] for r in runs(ml_home)}) == 2

    reference = tmp_path / "reference"
    proc = marketlake(
        "run", "--home", str(reference), "--start", "2024-06-27", "--end", "2024-06-28"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert warehouse_snapshot(ml_home) == warehouse_snapshot(reference)


def _kill_stage_processes() -> int:
    import psutil

    killed = 0
    for child in psutil.Process().children(recursive=True):
        try:
            if "marketlake.airflow.stage" in " ".join(child.cmdline()):
                child.send_signal(signal.SIGKILL)
                killed += 1
        except psutil.NoSuchProcess:
            continue
    return killed


def test_a_stage_killed_mid_way_is_retried_and_leaves_every_row_once(
    dag: Any,
    ml_home: Path,
    real_data: Path,
    server: ProviderServer,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    served: list[str] = []
    kills: list[int] = []

    def route(seen: Seen) -> Reply | None:
        if not seen.path.startswith(CHART):
            return None
        symbol = seen.path.rsplit("/", 1)[-1]
        if seen.query.get("interval") == "1mo":
            return Reply(200, no_later_splits(symbol))
        if symbol not in served and len(served) == 2 and not kills:
            # two symbols fetched and published: the fetch stage dies before the third
            kills.append(_kill_stage_processes())
            return Reply(503)
        if symbol not in served:
            served.append(symbol)
        body = (real_data / SHORT_BODY.format(symbol=symbol)).read_bytes()
        return Reply(200, body, {"Content-Type": "application/json"})

    server.route = route
    monkeypatch.setenv("MARKETLAKE_SOURCES__YAHOO__BASE_URL", server.url)
    # the warehouse comes from an Airflow connection: PostgreSQL
    monkeypatch.setenv("AIRFLOW_CONN_MARKETLAKE_WAREHOUSE", postgres_url)
    spec = {"source": "yahoo", "symbols": ["AAPL", "AMZN", "GOOG"], "end": "2020-01-03"}
    spec["start"] = "2020-01-02"
    assert run_dag(dag, "2024-07-11", **spec) == succeeded({"fetch_history": 2})
    assert kills == [1]

    monkeypatch.delenv("AIRFLOW_CONN_MARKETLAKE_WAREHOUSE")
    reference = tmp_path / "reference"
    proc = marketlake(
        "run", "--home", str(reference), "--source", "yahoo", "--symbols", "AAPL,AMZN,GOOG",
        "--start", spec["start"], "--end", spec["end"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr

    from marketlake.warehouse import open_warehouse

    bars = "SELECT symbol, ts, open, high, low, close, volume FROM bars_1d ORDER BY symbol, ts"
    stored = open_warehouse(postgres_url, read_only=True).query(bars).to_pylist()
    expected = open_warehouse(str(reference / "warehouse.duckdb"), read_only=True)
    assert stored == expected.query(bars).to_pylist()
    assert sorted({row["symbol"] for row in stored}) == ["AAPL", "AMZN", "GOOG"]
    assert len(stored) == len({(row["symbol"], row["ts"]) for row in stored})
    attempts = open_warehouse(postgres_url, read_only=True).query(
        "SELECT stage, status, attempt FROM runs ORDER BY stage"
    )
    assert sorted(map(tuple, (r.values() for r in attempts.to_pylist()))) == sorted(
        (stage, "succeeded", 2 if stage == "fetch_history" else 1) for stage in STAGE_NAMES
    )


def test_a_throttled_provider_is_retried_by_airflow_and_succeeds(
    dag: Any,
    ml_home: Path,
    real_data: Path,
    server: ProviderServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    throttled: list[str] = []

    def route(seen: Seen) -> Reply | None:
        if not seen.path.startswith(CHART):
            return None
        if seen.query.get("interval") == "1mo":
            return Reply(200, no_later_splits("AAPL"))
        if len(throttled) < 4:  # more than the client's own 3 retries
            throttled.append(seen.path)
            return Reply(429, b"Too Many Requests")
        return Reply(200, (real_data / LONG_BODY).read_bytes())

    server.route = route
    # the configuration comes from an Airflow variable holding marketlake TOML
    config = f'source = "yahoo"\nsymbols = ["AAPL"]\n[sources.yahoo]\nbase_url = "{server.url}"\n'
    monkeypatch.setenv("AIRFLOW_VAR_MARKETLAKE_CONFIG", config)
    assert run_dag(dag, "2024-07-12", start="2020-08-31", end="2020-11-06") == succeeded(
        {"fetch_history": 2}
    )
    assert len(throttled) == 4
    body = json.loads((real_data / LONG_BODY).read_text())
    stamps = body["chart"]["result"][0]["timestamp"]
    count = sql_json(ml_home, "SELECT count(*) AS n, min(source) AS source FROM bars_1d")
    assert count == [{"n": len(stamps), "source": "yahoo"}]
    fetch = [r for r in runs(ml_home) if r["stage"] == "fetch_history"]
    assert [(r["status"], r["attempt"]) for r in fetch] == [("succeeded", 2)]


def test_a_terminal_error_fails_the_task_without_retry(
    dag: Any, ml_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a bus inside one process cannot carry a run whose stages are processes of their own
    monkeypatch.setenv("MARKETLAKE_BUS", "memory://airflow")
    states = run_dag(dag, "2024-07-15", symbols="AAPL")
    assert states == {
        "fetch_history": ("failed", 1),
        **{stage: ("upstream_failed", 0) for stage in STAGE_NAMES[1:]},
        "_state": "failed",
    }
