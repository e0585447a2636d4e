"""``marketlake run --bus kafka://…`` against a real broker (Tansu), and with none."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from deltalake import DeltaTable

from tests.pipeline.cli import marketlake_process, sql_json
from tests.services.tansu import free_port, start_tansu, stop_tansu

RANGE = ("--start", "2024-01-02", "--end", "2024-03-28")


@pytest.fixture(scope="module")
def kafka_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of this module's own, so no other test's messages share its topics."""
    url, process = start_tansu(tmp_path_factory.mktemp("tansu"))
    try:
        yield url
    finally:
        stop_tansu(process)


def test_no_broker_is_one_line_without_traceback_and_the_same_in_runs(home: Path) -> None:
    bus = f"kafka://127.0.0.1:{free_port()}"
    proc = marketlake_process("run", "--home", str(home), "--symbols", "AAPL", "--bus", bus, *RANGE)
    assert proc.returncode == 1
    # no traceback, no librdkafka log lines: only the failed run's error line
    assert proc.stderr.startswith("error: run ") and proc.stderr.count("\n") == 1
    (row,) = sql_json(home, "SELECT stage, status, detail FROM runs")
    error = json.loads(row["detail"])["error"]
    assert (row["stage"], row["status"]) == ("fetch_history", "failed")
    assert error.startswith(f"no Kafka broker answered at {bus.removeprefix('kafka://')}")
    assert "\n" not in error
    assert f"fetch_history: {error}" in " ".join(proc.stdout.split())


def test_run_on_kafka_skips_what_an_earlier_run_left_on_the_bus(kafka_url: str, home: Path) -> None:
    bus = ("--bus", kafka_url)
    planned = marketlake_process(
        "run", "--plan", "--home", str(home), *bus, "--symbols", "^GSPC,BRK.B", *RANGE
    )
    assert planned.returncode == 0, planned.stderr
    left = planned.stdout.strip()
    fetched = marketlake_process(
        "run", "--home", str(home), *bus, "--stage", "fetch_history", "--run-id", left
    )
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr

    proc = marketlake_process("run", "--home", str(home), *bus, "--symbols", "AAPL", *RANGE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lake = DeltaTable(str(home / "lake" / "curated" / "bars_1d")).to_pyarrow_table()
    assert set(lake.column("symbol").to_pylist()) == {"AAPL"}
    (row,) = sql_json(
        home,
        f"SELECT detail FROM runs WHERE stage = 'consume_history' AND run_id <> '{left}'",
    )
    assert json.loads(row["detail"])["other_runs_skipped"] > 0
    (warehouse,) = sql_json(home, "SELECT count(*) AS n FROM bars_1d")
    assert warehouse["n"] == lake.num_rows
