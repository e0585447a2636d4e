"""``marketlake run --lake s3://...`` end to end against a real S3 server (SeaweedFS).

The lake is checked with clients that share no code with marketlake: boto3 lists the objects,
deltalake and Polars read the tables, DuckDB reads the warehouse.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import duckdb
import exchange_calendars as xc
import pandas as pd
import polars as pl
import pytest
from deltalake import DeltaTable

from tests.pipeline.cli import marketlake, warehouse_snapshot
from tests.pipeline.raw_payloads import symbols_kept_in_bucket
from tests.services.seaweedfs import SeaweedFS

SYMBOLS = ["AAPL", "JPM", "MSFT"]
START, END = "2024-01-02", "2024-06-28"
RUN_ARGS = ["--symbols", ",".join(SYMBOLS), "--start", START, "--end", END]
TABLES = (
    "curated/bars_1d",
    "curated/corporate_actions",
    "analytics/adjustment_factors",
    "analytics/daily_metrics",
    "analytics/indicators_1d",
)


def s3_env(server: SeaweedFS) -> dict[str, str]:
    """The standard AWS_* variables reaching ``server``."""
    return {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }


def sessions(start: str, end: str) -> int:
    """Sessions in [start, end], straight from exchange_calendars."""
    return len(xc.get_calendar("XNYS").sessions_in_range(pd.Timestamp(start), pd.Timestamp(end)))


@pytest.fixture(scope="module")
def s3_run(seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home whose lake is ``s3://lake/<prefix>``, after one successful run."""
    home = tmp_path_factory.mktemp("s3run") / "home"
    prefix = f"run-{uuid.uuid4().hex[:10]}"
    proc = marketlake(
        "run", "--home", str(home), "--lake", f"s3://{seaweedfs.bucket}/{prefix}", *RUN_ARGS,
        env=s3_env(seaweedfs),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert seaweedfs.secret_key not in proc.stdout + proc.stderr
    return home, prefix


def _keys(server: SeaweedFS, prefix: str) -> list[str]:
    client = server.client()
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=server.bucket, Prefix=f"{prefix}/"
    ):
        keys.extend(item["Key"][len(prefix) + 1 :] for item in page.get("Contents", []))
    return sorted(keys)


def _options(server: SeaweedFS) -> dict[str, str]:
    """deltalake storage options for ``server`` (its own option names, not marketlake's)."""
    return s3_env(server)


def test_run_writes_every_layer_to_s3(seaweedfs: SeaweedFS, s3_run: tuple[Path, str]) -> None:
    home, prefix = s3_run
    keys = _keys(seaweedfs, prefix)
    raw = [k for k in keys if k.startswith("raw/sim/bars_1d/ingest_date=")]
    assert raw and all(k.endswith(".json.gz") for k in raw)
    kept = symbols_kept_in_bucket(seaweedfs, (f"{prefix}/{key}" for key in raw))
    assert kept == dict.fromkeys(SYMBOLS, 1)
    for table in TABLES:
        assert f"{table}/_delta_log/00000000000000000000.json" in keys, table
        assert any(k.startswith(f"{table}/") and k.endswith(".parquet") for k in keys), table
    assert not (home / "lake").exists()  # nothing went to the local default lake


def test_independent_readers_see_the_warehouse_bars(
    seaweedfs: SeaweedFS, s3_run: tuple[Path, str]
) -> None:
    home, prefix = s3_run
    uri = f"s3://{seaweedfs.bucket}/{prefix}"
    bars = DeltaTable(f"{uri}/curated/bars_1d", storage_options=_options(seaweedfs))
    lake_counts = Counter(bars.to_pyarrow_table().column("symbol").to_pylist())
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT symbol, count(*) FROM bars_1d GROUP BY 1").fetchall()
    finally:
        con.close()
    assert lake_counts == dict(rows) == {s: sessions(START, END) for s in SYMBOLS}
    metrics = pl.read_delta(f"{uri}/analytics/daily_metrics", storage_options=_options(seaweedfs))
    assert metrics.height == sessions(START, END) * len(SYMBOLS)
    assert metrics.select(["symbol", "ts"]).is_duplicated().sum() == 0


def _content(table: DeltaTable) -> list[tuple[object, ...]]:
    """The table's rows, sorted, NaN as None (so equal tables compare equal)."""
    rows = table.to_pyarrow_table().to_pylist()
    return sorted(
        (tuple((k, None if v != v else v) for k, v in sorted(row.items())) for row in rows),
        key=repr,
    )


def test_rerun_on_s3_changes_nothing(seaweedfs: SeaweedFS, s3_run: tuple[Path, str]) -> None:
    home, prefix = s3_run
    uri = f"s3://{seaweedfs.bucket}/{prefix}"

    def lake_state() -> dict[str, object]:
        state: dict[str, object] = {}
        for table in TABLES:
            delta = DeltaTable(f"{uri}/{table}", storage_options=_options(seaweedfs))
            state[table] = _content(delta)
            if table.startswith("curated/"):  # merged: an unchanged re-run commits nothing
                state[f"{table} version"] = delta.version()
        return state

    lake_before, warehouse_before = lake_state(), warehouse_snapshot(home)

    def raw_batches() -> set[str]:  # batch file names (the ingest_date folder is the run's day)
        return {k.rsplit("/", 1)[1] for k in _keys(seaweedfs, prefix) if k.startswith("raw/")}

    raw_before = raw_batches()
    proc = marketlake(
        "run", "--home", str(home), "--lake", uri, *RUN_ARGS, env=s3_env(seaweedfs)
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert warehouse_snapshot(home) == warehouse_before
    assert lake_state() == lake_before
    assert raw_batches() == raw_before


def test_doctor_checks_the_s3_lake(seaweedfs: SeaweedFS, s3_run: tuple[Path, str]) -> None:
    home, prefix = s3_run
    uri = f"s3://{seaweedfs.bucket}/{prefix}"
    env = {**s3_env(seaweedfs), "MARKETLAKE_LAKE": uri, "COLUMNS": "400"}
    proc = marketlake("doctor", "--home", str(home), env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    (line,) = [ln for ln in out.splitlines() if "│ lake " in ln]
    assert f"{uri} (endpoint {seaweedfs.endpoint}): reachable, writable" in line
    version = DeltaTable(f"{uri}/curated/bars_1d", storage_options=_options(seaweedfs)).version()
    assert f"curated/bars_1d v{version} {sessions(START, END) * len(SYMBOLS):,} rows" in line
    assert seaweedfs.secret_key not in out
    assert not [k for k in _keys(seaweedfs, prefix) if k.startswith("_doctor/")]
