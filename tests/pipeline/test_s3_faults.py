"""Faults of an S3 lake through the command line: outages, bad keys, bucket and endpoint.

A SeaweedFS server is stopped while ``marketlake run`` writes to it; the run fails cleanly or,
when the server comes back within the retry budget, completes. Either way a re-run ends with
every bar once and every Delta table readable at its latest version.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from tests.pipeline.cli import marketlake, warehouse_snapshot
from tests.pipeline.raw_payloads import symbols_kept_in_bucket
from tests.pipeline.test_s3_run import s3_env, sessions
from tests.services.seaweedfs import SeaweedFS, free_ports

SYMBOLS = ["AAPL", "GOOGL", "JPM", "MSFT", "NVDA", "TSLA", "V"]
START, END = "2024-01-02", "2024-06-28"
RUN_ARGS = ["--symbols", ",".join(SYMBOLS), "--start", START, "--end", END]
LOG_ENTRY = re.compile(r"^(\d{20}\.json|\d{20}\.checkpoint\.parquet|_last_checkpoint)$")


def _keys(server: SeaweedFS, prefix: str) -> list[str]:
    keys: list[str] = []
    pages = server.client().get_paginator("list_objects_v2")
    for page in pages.paginate(Bucket=server.bucket, Prefix=f"{prefix}/"):
        keys.extend(item["Key"][len(prefix) + 1 :] for item in page.get("Contents", []))
    return keys


def _check_tables(server: SeaweedFS, prefix: str) -> dict[str, int]:
    """Every Delta table's log is gap-free with nothing half-written; return the row counts."""
    keys = _keys(server, prefix)
    tables = sorted({k.split("/_delta_log/")[0] for k in keys if "/_delta_log/" in k})
    rows = {}
    for table in tables:
        log = [k.split("/_delta_log/")[1] for k in keys if k.startswith(f"{table}/_delta_log/")]
        assert all(LOG_ENTRY.match(name) for name in log), (table, log)
        commits = sorted(int(name[:20]) for name in log if name.endswith(".json"))
        assert commits == list(range(len(commits))), (table, commits)
        uri = f"s3://{server.bucket}/{prefix}/{table}"
        delta = DeltaTable(uri, storage_options=s3_env(server))
        assert delta.version() == commits[-1]
        rows[table] = delta.to_pyarrow_table().num_rows
    return rows


def _bars_once(home: Path, server: SeaweedFS, prefix: str) -> None:
    expected = sessions(START, END) * len(SYMBOLS)
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT (symbol, ts)) FROM bars_1d"
        ).fetchone() or (0, 0)
    finally:
        con.close()
    assert total == distinct == expected
    bars = DeltaTable(
        f"s3://{server.bucket}/{prefix}/curated/bars_1d", storage_options=s3_env(server)
    ).to_pyarrow_table()
    keys = set(zip(bars.column("symbol").to_pylist(), bars.column("ts").to_pylist(), strict=True))
    assert len(keys) == bars.num_rows == expected


def _start_run(home: Path, url: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "marketlake", "run", "--home", str(home), "--lake", url,
             *RUN_ARGS],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip


def _stop_when_writing(server: SeaweedFS, prefix: str, proc: subprocess.Popen[bytes]) -> None:
    """Stop the server as soon as the run's first raw payload is in the bucket."""
    deadline = time.monotonic() + 120
    while not any(k.startswith("raw/") for k in _keys(server, prefix)):
        assert proc.poll() is None, "the run ended before it wrote to the lake"
        assert time.monotonic() < deadline, "the run wrote nothing to the lake in 120 s"
        time.sleep(0.05)
    server.stop()


def _env(server: SeaweedFS, **extra: str) -> dict[str, str]:
    import os

    return {**os.environ, **s3_env(server), "COLUMNS": "200", **extra}


def test_outage_fails_the_run_cleanly_and_a_rerun_completes_once(
    seaweedfs_to_stop: SeaweedFS, tmp_path: Path
) -> None:
    server = seaweedfs_to_stop
    reference = tmp_path / "reference"
    url = f"s3://{server.bucket}"
    proc = marketlake(
        "run", "--home", str(reference), "--lake", f"{url}/reference", *RUN_ARGS,
        env=s3_env(server),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr

    home, log = tmp_path / "home", tmp_path / "run.log"
    impatient = _env(server, MARKETLAKE_RUNNER__RETRIES="1", MARKETLAKE_RUNNER__BACKOFF_S="0.2")
    run = _start_run(home, f"{url}/outage", impatient, log)
    _stop_when_writing(server, "outage", run)
    assert run.wait(timeout=300) != 0
    output = " ".join(log.read_text().split())
    assert "Traceback" not in output
    assert f"s3://{server.bucket}/outage (endpoint {server.endpoint})" in output
    assert "failed" in output and server.secret_key not in output

    server.start()  # same folder and ports
    _check_tables(server, "outage")  # whatever the cut-off run committed reads cleanly
    proc = marketlake(
        "run", "--home", str(home), "--lake", f"{url}/outage", *RUN_ARGS, env=s3_env(server)
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert warehouse_snapshot(home) == warehouse_snapshot(reference)
    _bars_once(home, server, "outage")
    assert _check_tables(server, "outage") == _check_tables(server, "reference")


def test_a_short_outage_is_retried_and_the_run_succeeds(
    seaweedfs_to_stop: SeaweedFS, tmp_path: Path
) -> None:
    server = seaweedfs_to_stop
    home, log = tmp_path / "home", tmp_path / "run.log"
    patient = _env(server, MARKETLAKE_RUNNER__RETRIES="6", MARKETLAKE_RUNNER__BACKOFF_S="1")
    run = _start_run(home, f"s3://{server.bucket}/short", patient, log)
    _stop_when_writing(server, "short", run)
    assert run.poll() is None  # the server went away with the lake still to write
    restart = threading.Thread(target=server.start)
    restart.start()
    try:
        assert run.wait(timeout=300) == 0, log.read_text()
    finally:
        restart.join()
    _bars_once(home, server, "short")
    _check_tables(server, "short")
    raw = [f"short/{key}" for key in _keys(server, "short") if key.startswith("raw/")]
    assert symbols_kept_in_bucket(server, raw) == dict.fromkeys(SYMBOLS, 1)


def _error_cases(server: SeaweedFS) -> dict[str, tuple[str, dict[str, str], str, str, str]]:
    """Case name -> (lake URL, env, the secret in use, what the check and a run must say)."""
    good = s3_env(server)
    wrong_secret = "wrong-secret-" + uuid.uuid4().hex
    dead = f"http://127.0.0.1:{free_ports(1)[0]}"
    return {
        "credentials": (
            f"s3://{server.bucket}/bad-keys",
            {**good, "AWS_SECRET_ACCESS_KEY": wrong_secret},
            wrong_secret,
            "the credentials were rejected",
            "the credentials were rejected",
        ),
        "bucket": (
            "s3://no-such-bucket-xyz/lake",
            good,
            server.secret_key,
            "bucket 'no-such-bucket-xyz' does not exist",
            "bucket 'no-such-bucket-xyz' does not exist",
        ),
        "endpoint": (
            f"s3://{server.bucket}/lake",
            {**good, "AWS_ENDPOINT_URL": dead},
            server.secret_key,
            f"(endpoint {dead}) failed (may succeed on retry)",
            f"(endpoint {dead}) failed (may succeed on retry)",
        ),
    }


@pytest.mark.parametrize("case", ["credentials", "bucket", "endpoint"])
def test_bad_s3_settings_give_one_clear_error(
    seaweedfs: SeaweedFS, tmp_path: Path, case: str
) -> None:
    url, env, secret, reason, run_reason = _error_cases(seaweedfs)[case]
    env = {**env, "MARKETLAKE_RUNNER__RETRIES": "0", "COLUMNS": "1000"}
    home = tmp_path / "home"

    tables = marketlake("lake", "tables", "--home", str(home), "--lake", url, env=env)
    assert tables.returncode == 2 and tables.stdout == ""
    (line,) = tables.stderr.splitlines()
    assert line.startswith("error: ") and url in line and reason in line
    assert "endpoint" in line and secret not in line

    doctor = marketlake("doctor", "--home", str(home), env={**env, "MARKETLAKE_LAKE": url})
    assert doctor.returncode == 1
    (row,) = [ln for ln in doctor.stdout.splitlines() if ln.startswith("│ lake ")]
    assert "failed" in row and url in row and reason in row
    assert secret not in doctor.stdout + doctor.stderr

    run = marketlake("run", "--home", str(home), "--lake", url, *RUN_ARGS, env=env)
    output = run.stdout + run.stderr
    assert run.returncode != 0 and "Traceback" not in output and secret not in output
    text = " ".join(output.split())
    assert url in text and run_reason in text
