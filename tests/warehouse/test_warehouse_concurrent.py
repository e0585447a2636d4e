"""Reading the DuckDB warehouse while other processes write it: ``marketlake sql`` answers
during a ``marketlake stream`` and a ``marketlake run`` on the same home, and every answer is
a committed state (counts never go back, a symbol's history is all there or absent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from marketlake.cli.app import app
from marketlake.warehouse.duckdb import DuckDBWarehouse

TICKS = 3_000
RUN_SYMBOLS = ("AAPL", "MSFT")
QUERY = (
    "SELECT (SELECT count(*) FROM ticks) AS ticks, "
    "(SELECT count(*) FROM bars_1m) AS bars_1m, "
    "(SELECT coalesce(list(n ORDER BY n), []) FROM "
    "(SELECT count(*) AS n FROM bars_1d GROUP BY symbol)) AS bars_per_symbol"
)


def start(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "marketlake", *args, "--home", str(home), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def test_sql_reads_committed_data_while_a_stream_and_a_run_write(home: Path) -> None:
    with DuckDBWarehouse(home / "warehouse.duckdb") as warehouse:
        warehouse.ensure_tables()
    stream = start(
        home, "stream", "--count", str(TICKS), "--rate", "300", "--commit-interval", "200ms",
        "--symbols", "AAPL,MSFT", "--start", "2024-03-04T14:30:00", "--seed", "7",
    )  # fmt: skip
    run = start(
        home, "run", "--symbols", ",".join(RUN_SYMBOLS), "--start", "2023-01-03",
        "--end", "2023-06-30",
    )  # fmt: skip
    answers = []
    try:
        while stream.poll() is None or run.poll() is None:
            result = CliRunner().invoke(
                app, ["sql", QUERY, "--home", str(home), "--format", "json"]
            )
            assert result.exit_code == 0, result.output  # never "in use by another process"
            answers.append(json.loads(result.stdout)[0])
    finally:
        for process in (stream, run):
            _, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
    (final,) = json.loads(
        CliRunner().invoke(app, ["sql", QUERY, "--home", str(home), "--format", "json"]).stdout
    )
    assert final["ticks"] == TICKS
    sessions = final["bars_per_symbol"][0]
    assert final["bars_per_symbol"] == [sessions] * len(RUN_SYMBOLS) and sessions > 100
    for earlier, later in zip(answers, [*answers[1:], final], strict=True):
        assert earlier["ticks"] <= later["ticks"] and earlier["bars_1m"] <= later["bars_1m"]
    for answer in answers:  # one load transaction: a symbol's bars are all there or absent
        assert set(answer["bars_per_symbol"]) <= {sessions}
    # some answers came while the stream was half way: reads went on between its writes
    assert any(0 < answer["ticks"] < TICKS for answer in answers), answers
