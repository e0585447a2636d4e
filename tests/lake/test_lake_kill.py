"""A merge killed at any instant leaves the table at its old or new state; a re-run completes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from marketlake.lake import LakeStorage, LakeTables
from marketlake.schemas import BAR_KEYS, BAR_SCHEMA

KILL_AFTER_S = (0.0, 0.15, 0.5)
CHILD_SETTINGS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_ALLOW_HTTP",
)
CHILD = """
import sys
sys.path.insert(0, {here!r})
from test_lake_kill import build_bars
from marketlake.lake import LakeStorage, LakeTables
from marketlake.schemas import BAR_KEYS
url, name = sys.argv[1], sys.argv[2]
tables = LakeTables(LakeStorage.from_url(url))
data = build_bars(symbols=250, days=200, close=2.0)
print("ready", flush=True)
tables.merge(name, data, BAR_KEYS)
print("done", flush=True)
"""


def build_bars(symbols: int, days: int, close: float) -> pa.Table:
    """``symbols`` x ``days`` bars, every close equal to ``close``."""
    start = np.datetime64("2020-01-01T00:00:00", "us")
    ts = start + np.arange(days).astype("timedelta64[D]").astype("timedelta64[us]")
    n = symbols * days
    prices = np.full(n, close)
    return pa.table(
        {
            "symbol": pa.array(np.repeat([f"S{i:03d}" for i in range(symbols)], days)),
            "ts": pa.array(np.tile(ts, symbols)).cast(pa.timestamp("us", tz="UTC")),
            "open": prices,
            "high": prices,
            "low": prices,
            "close": prices,
            "volume": np.ones(n),
            "source": pa.array(["sim"] * n),
            "ingested_at": pa.array(np.full(n, start)).cast(pa.timestamp("us", tz="UTC")),
        },
        schema=BAR_SCHEMA,
    )


def _canonical(table: pa.Table) -> pa.Table:
    return table.select(BAR_SCHEMA.names).sort_by([("symbol", "ascending"), ("ts", "ascending")])


def _run_and_kill(storage: LakeStorage, name: str, delay: float) -> None:
    code = CHILD.format(here=str(Path(__file__).parent))
    settings = {k: v for k, v in storage.storage_options().items() if k in CHILD_SETTINGS}
    child = subprocess.Popen(
        [sys.executable, "-c", code, storage.url, name],
        stdout=subprocess.PIPE,
        env=dict(os.environ, **settings),
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"ready"
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)


def test_killed_merge_leaves_old_or_new_state_and_rerun_is_exactly_once(
    lake_storage: LakeStorage,
) -> None:
    before = _canonical(build_bars(symbols=200, days=200, close=1.0))
    after_data = build_bars(symbols=250, days=200, close=2.0)
    after = _canonical(after_data)
    tables = LakeTables(lake_storage)
    outcomes = []
    for index, delay in enumerate(KILL_AFTER_S):
        name = f"curated/kill_{index}"
        tables.merge(name, before, BAR_KEYS)
        _run_and_kill(lake_storage, name, delay)
        state = _canonical(tables.read(name))
        assert state.equals(before) or state.equals(after)
        outcomes.append("after" if state.equals(after) else "before")
        tables.merge(name, after_data, BAR_KEYS)
        final = _canonical(tables.read(name))
        assert final.equals(after)
        assert final.group_by(list(BAR_KEYS)).aggregate([]).num_rows == final.num_rows
    assert "before" in outcomes  # at least one kill landed before the commit


def test_killed_first_write_leaves_no_table_or_the_whole_table(lake_storage: LakeStorage) -> None:
    tables = LakeTables(lake_storage)
    after = _canonical(build_bars(symbols=250, days=200, close=2.0))
    for index, delay in enumerate(KILL_AFTER_S[:2]):
        name = f"curated/first_{index}"
        _run_and_kill(lake_storage, name, delay)
        if tables.exists(name):
            assert _canonical(tables.read(name)).equals(after)
        tables.merge(name, after, BAR_KEYS)
        assert _canonical(tables.read(name)).equals(after)
