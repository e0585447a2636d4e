"""``marketlake run --bus kafka://…`` with no broker listening."""

from __future__ import annotations

import json
from pathlib import Path

from tests.pipeline.cli import marketlake, sql_json
from tests.services.tansu import free_port

RANGE = ("--start", "2024-01-02", "--end", "2024-03-28")


def test_no_broker_is_one_line_without_traceback_and_the_same_in_runs(home: Path) -> None:
    bus = f"kafka://127.0.0.1:{free_port()}"
    proc = marketlake("run", "--home", str(home), "--symbols", "AAPL", "--bus", bus, *RANGE)
    assert proc.returncode == 1
    assert proc.stderr == ""  # no traceback, no librdkafka log lines
    (row,) = sql_json(home, "SELECT stage, status, detail FROM runs")
    error = json.loads(row["detail"])["error"]
    assert (row["stage"], row["status"]) == ("fetch_history", "failed")
    assert error.startswith(f"no Kafka broker answered at {bus.removeprefix('kafka://')}")
    assert "\n" not in error
    assert f"fetch_history: {error}" in " ".join(proc.stdout.split())
