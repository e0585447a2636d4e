"""SIGKILL during ``load_warehouse`` on PostgreSQL, then a re-run: every row exactly once.

The stage is killed at the moment its connection holds an open write transaction (seen in
``pg_stat_activity``), so the kill lands half way through a table's replacement.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc
from tests.pipeline.cli import marketlake as run_marketlake
from tests.services.postgres import new_database

from marketlake.warehouse import TABLES, open_warehouse

SYMBOLS = ",".join(f"S{number:02d}" for number in range(12))
ARGS = ["--symbols", SYMBOLS, "--start", "2023-01-03", "--end", "2024-12-31", "--quiet"]
# small buckets: many write transactions, so the kill finds one open
SMALL_BUCKETS = {"MARKETLAKE_RUNNER__BUCKET_ROWS": "300"}
WRITING = (
    "SELECT count(*) AS n FROM pg_stat_activity "
    "WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
)
KEYED_TABLES = ("bars_1d", "indicators_1d", "daily_metrics", "bars_1d_adjusted", "symbols")


def marketlake(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``marketlake ARGS`` (in this process) to the end, with small buckets."""
    return run_marketlake(*args, env=SMALL_BUCKETS)


def kill_while_writing(url: str, stage_args: list[str]) -> bool:
    """Start the load stage; SIGKILL it once it holds a write transaction. True if killed so."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "marketlake", *stage_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **SMALL_BUCKETS},
    )
    killed = False
    with adbc.connect(url, autocommit=True) as watcher, watcher.cursor() as cursor:
        while proc.poll() is None:
            cursor.execute(WRITING)
            if cursor.fetchone()[0]:
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
    proc.wait()
    return killed and proc.returncode == -signal.SIGKILL


def snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the keyed tables, without load times, sorted."""
    with open_warehouse(url, read_only=True) as warehouse:
        result = {}
        for name in KEYED_TABLES:
            columns = [c for c in TABLES[name].columns if c != "ingested_at"]
            rows = warehouse.query(f"SELECT {', '.join(columns)} FROM {name}").to_pylist()
            result[name] = sorted(tuple(row.values()) for row in rows)
        return result


def duplicates(url: str) -> dict[str, int]:
    """Rows beyond the first of each key, per keyed table (all zero when every row is once)."""
    with open_warehouse(url, read_only=True) as warehouse:
        found = {}
        for name in KEYED_TABLES:
            keys = ", ".join(TABLES[name].keys)
            (row,) = warehouse.query(
                f"SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT {keys} FROM {name}) k) "
                f"AS extra FROM {name}"
            ).to_pylist()
            found[name] = row["extra"]
        return found


def test_a_load_killed_mid_transaction_and_rerun_leaves_every_row_once(
    postgres_server: str, tmp_path: Path
) -> None:
    reference_url, url = new_database(postgres_server), new_database(postgres_server)
    done = marketlake(
        "run", "--home", str(tmp_path / "reference"), "--warehouse", reference_url, *ARGS
    )
    assert done.returncode == 0, done.stderr

    home = str(tmp_path / "home")
    plan = marketlake("run", "--plan", "--home", home, "--warehouse", url, *ARGS)
    assert plan.returncode == 0, plan.stderr
    run = ["run", "--run-id", plan.stdout.strip(), "--home", home, "--warehouse", url, "--quiet"]
    for stage in ("fetch_history", "consume_history", "process"):
        proc = marketlake(*run, "--stage", stage)
        assert proc.returncode == 0, proc.stderr

    kills = sum(kill_while_writing(url, [*run, "--stage", "load_warehouse"]) for _ in range(3))
    assert kills >= 1
    assert set(duplicates(url).values()) == {0}

    for stage in ("load_warehouse", "success"):
        proc = marketlake(*run, "--stage", stage)
        assert proc.returncode == 0, proc.stderr
    assert set(duplicates(url).values()) == {0}
    assert snapshot(url) == snapshot(reference_url)
