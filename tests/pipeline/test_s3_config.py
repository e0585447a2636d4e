"""An S3 lake configured in the TOML file: endpoint, region and keys in ``[s3]``, never printed."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from deltalake import DeltaTable

from tests.pipeline.cli import marketlake
from tests.pipeline.test_s3_run import s3_env, sessions
from tests.services.seaweedfs import SeaweedFS

START, END = "2024-01-02", "2024-03-28"


def test_config_file_carries_the_s3_settings(seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    server = seaweedfs
    home = tmp_path / "home"
    home.mkdir()
    url = f"s3://{server.bucket}/configured-{uuid.uuid4().hex[:10]}"
    (home / "marketlake.toml").write_text(
        f'lake = "{url}"\n'
        "[s3]\n"
        f'endpoint_url = "{server.endpoint}"\n'
        'region = "us-east-1"\n'
        f'access_key_id = "{server.access_key}"\n'
        f'secret_access_key = "{server.secret_key}"\n'
        "allow_http = true\n"
    )
    # No AWS_* variables: everything comes from the file.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # the file's endpoint wins over this
    args = ("--home", str(home))

    run = marketlake("run", *args, "--symbols", "AAPL", "--start", START, "--end", END, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    bars = DeltaTable(f"{url}/curated/bars_1d", storage_options=s3_env(server))
    assert bars.to_pyarrow_table().num_rows == sessions(START, END)

    tables = marketlake("lake", "tables", *args, "--format", "json", env=env)
    assert tables.returncode == 0, tables.stderr
    listed = {row["table"]: row["rows"] for row in json.loads(tables.stdout)}
    assert listed["curated/bars_1d"] == sessions(START, END)

    doctor = marketlake("doctor", *args, env={**env, "COLUMNS": "400"})
    out = doctor.stdout + doctor.stderr
    assert doctor.returncode == 0, out
    assert server.secret_key not in out and '"secret_access_key": "**********"' in out
    assert f"{url} (endpoint {server.endpoint}): reachable, writable" in out
    for proc in (run, tables):
        assert server.secret_key not in proc.stdout + proc.stderr
