"""Run the ``marketlake`` command in a subprocess, as a user would."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb


def marketlake(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m marketlake ARGS`` and return the finished process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "marketlake", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def sql_json(home: Path, query: str) -> list[dict[str, Any]]:
    """Query the warehouse under ``home`` through ``marketlake sql --format json``."""
    proc = marketlake("sql", query, "--home", str(home), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout)
    return rows


TABLE_KEYS = {
    "bars_1d": ("symbol", "ts"),
    "corporate_actions": ("symbol", "ex_date", "kind"),
    "bars_1d_adjusted": ("symbol", "ts"),
    "daily_metrics": ("symbol", "ts"),
    "indicators_1d": ("symbol", "ts"),
    "quarantine": ("dataset", "record_id", "rule"),
}
VOLATILE_COLUMNS = {"ingested_at", "quarantined_at", "detected_at"}


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def warehouse_snapshot(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every loaded table's rows, sorted by key, without load-time columns."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        snapshot = {}
        for table, keys in TABLE_KEYS.items():
            columns = [
                row[0]
                for row in con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = ? ORDER BY ordinal_position",
                    [table],
                ).fetchall()
                if row[0] not in VOLATILE_COLUMNS
            ]
            order = ", ".join(keys)
            rows = con.execute(
                f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}"
            ).fetchall()
            snapshot[table] = [tuple(_nan_to_none(v) for v in row) for row in rows]
        return snapshot
    finally:
        con.close()
