"""``marketlake lake ...`` through the command line, on a local lake and on S3 (SeaweedFS).

Each lake gets two runs (a first quarter, then a half year), so tables have history to travel
through. What the commands print is checked against deltalake reading the same tables.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from tests.pipeline.cli import marketlake
from tests.pipeline.test_s3_run import s3_env, sessions
from tests.services.seaweedfs import SeaweedFS

SYMBOLS = "AAPL,JPM,MSFT"
FIRST_END, SECOND_END = "2024-03-28", "2024-06-28"
START = "2024-01-02"
ANALYTICS = ("analytics/daily_metrics", "analytics/indicators_1d")
FACTORS = "analytics/adjustment_factors"  # one row per span of factors, not per session


@dataclass
class Lake:
    """A home, its lake URL, and how a subprocess and deltalake reach it."""

    home: Path
    url: str
    env: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    server: SeaweedFS | None = None
    first_versions: dict[str, int] = field(default_factory=dict)
    between: datetime | None = None

    def stored(self, relpath: str) -> bool:
        """True when the object or file ``relpath`` exists, as boto3 or the filesystem sees it."""
        if self.server is None:
            return (self.home / "lake" / relpath).exists()
        prefix = self.url.split("/", 3)[3]
        listed = self.server.client().list_objects_v2(
            Bucket=self.server.bucket, Prefix=f"{prefix}/{relpath}"
        )
        return bool(listed.get("KeyCount"))

    def lake(self, *args: str, check: bool = True) -> Any:
        """Run ``marketlake lake ARGS`` on this lake; parse --format json output."""
        proc = marketlake("lake", *args, "--home", str(self.home), "--lake", self.url, env=self.env)
        if not check:
            return proc
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        return json.loads(proc.stdout) if "json" in args else proc.stdout

    def delta(self, table: str, version: int | None = None) -> DeltaTable:
        """The table opened by deltalake directly."""
        return DeltaTable(f"{self.url}/{table}", version=version, storage_options=self.options)

    def run(self, end: str) -> None:
        """``marketlake run`` of the test symbols from START to ``end``."""
        proc = marketlake(
            "run", "--home", str(self.home), "--lake", self.url, "--symbols", SYMBOLS,
            "--start", START, "--end", end, env=self.env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module", params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """A lake after two runs, with the table versions and a time between them recorded."""
    home = tmp_path_factory.mktemp(f"lake-{request.param}") / "home"
    if request.param == "local":
        found = Lake(home, (home / "lake").resolve().as_uri())
    else:
        server: SeaweedFS = request.getfixturevalue("seaweedfs")
        url = f"s3://{server.bucket}/cli-{uuid.uuid4().hex[:10]}"
        found = Lake(home, url, s3_env(server), s3_env(server), server)
    found.run(FIRST_END)
    for table in ("curated/bars_1d", *ANALYTICS, FACTORS):
        found.first_versions[table] = found.delta(table).version()
    found.between = datetime.now(UTC)
    found.run(SECOND_END)
    return found


def _content(table: DeltaTable) -> list[tuple[Any, ...]]:
    rows = table.to_pyarrow_table().to_pylist()
    return sorted(
        (tuple((k, None if v != v else v) for k, v in sorted(row.items())) for row in rows),
        key=repr,
    )


def test_tables_and_history(lake: Lake) -> None:
    listed = {row["table"]: row for row in lake.lake("tables", "--format", "json")}
    assert {"curated/bars_1d", "curated/corporate_actions", *ANALYTICS} <= set(listed)
    for name, row in listed.items():
        delta = lake.delta(name)
        assert row["version"] == delta.version(), name
        assert row["rows"] == delta.to_pyarrow_table().num_rows, name
        assert row["files"] == len(delta.file_uris()), name
    assert listed["curated/bars_1d"]["rows"] == 3 * sessions(START, SECOND_END)

    history = lake.lake("history", "curated/bars_1d", "--format", "json")
    versions = [row["version"] for row in history]
    assert versions == list(range(lake.delta("curated/bars_1d").version(), -1, -1))
    assert history[-1]["operation"] == "WRITE"
    assert sum(row["rows_added"] or 0 for row in history) == 3 * sessions(START, SECOND_END)
    assert len(lake.lake("history", "curated/bars_1d", "--limit", "1", "--format", "json")) == 1


def test_read_as_of_version_and_time(lake: Lake) -> None:
    first = lake.first_versions["curated/bars_1d"]
    assert lake.between is not None
    by_version = lake.lake("read", "curated/bars_1d", "--as-of", str(first), "--format", "json")
    by_time = lake.lake(
        "read", "curated/bars_1d", "--as-of", lake.between.isoformat(), "--format", "json"
    )
    assert by_version == by_time
    assert len(by_version) == 3 * sessions(START, FIRST_END)
    assert max(row["ts"] for row in by_version).startswith(FIRST_END)
    latest = lake.lake("read", "curated/bars_1d", "--symbols", "JPM", "--format", "json")
    assert len(latest) == sessions(START, SECOND_END) and {r["symbol"] for r in latest} == {"JPM"}
    csv = lake.lake("read", "curated/bars_1d", "--as-of", "0", "--limit", "4", "--format", "csv")
    lines = csv.splitlines()
    assert lines[0].startswith("symbol,ts,") and len(lines) == 5
    table = lake.lake("read", "curated/bars_1d", "--limit", "2")
    assert "first" not in table and "2 rows" in table

    too_new = lake.lake("read", "curated/bars_1d", "--as-of", "999", check=False)
    assert too_new.returncode == 2 and "Traceback" not in too_new.stderr
    assert too_new.stderr.strip().splitlines() == [
        f"error: table curated/bars_1d has no version 999: versions run from 0 to "
        f"{lake.delta('curated/bars_1d').version()}"
    ]
    missing = lake.lake("read", "curated/nope", check=False)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "no Delta table curated/nope" in missing.stderr and "curated/bars_1d" in missing.stderr


def test_reprocess_restores_the_analytics_of_a_snapshot(lake: Lake) -> None:
    first = lake.first_versions["curated/bars_1d"]
    for table in ANALYTICS:  # the second run rebuilt the analytics over the half year
        assert lake.delta(table).to_pyarrow_table().num_rows == 3 * sessions(START, SECOND_END)
    written = lake.lake("reprocess", "--as-of", str(first), "--format", "json")
    assert {row["table"] for row in written} == {*ANALYTICS, FACTORS}
    assert {row["bars_version"] for row in written} == {first}
    for table in (*ANALYTICS, FACTORS):
        expected = _content(lake.delta(table, lake.first_versions[table]))
        assert _content(lake.delta(table)) == expected, table


def test_compact_then_vacuum(lake: Lake) -> None:
    before = {row["table"]: row for row in lake.lake("tables", "--format", "json")}
    compacted = {row["table"]: row for row in lake.lake("compact", "--format", "json")}
    assert set(compacted) == set(before)
    after = {row["table"]: row for row in lake.lake("tables", "--format", "json")}
    for name, row in after.items():
        assert row["rows"] == before[name]["rows"], name
        assert row["files"] == min(1, before[name]["files"]), name
        assert compacted[name]["files_removed"] == (
            before[name]["files"] if before[name]["files"] > 1 else 0
        )
    assert before["curated/bars_1d"]["files"] > 1  # two runs: something to compact
    bars_content = _content(lake.delta("curated/bars_1d"))

    planned = lake.lake(
        "vacuum", "curated/bars_1d", "--retention-hours", "0", "--dry-run", "--format", "json"
    )
    assert planned and all(not row["deleted"] for row in planned)
    deleted = lake.lake("vacuum", "curated/bars_1d", "--retention-hours", "0", "--format", "json")
    assert [row["file"] for row in deleted] == [row["file"] for row in planned]
    assert lake.lake("vacuum", "--retention-hours", "0", "--dry-run", "--format", "json") != []
    again = lake.lake("vacuum", "curated/bars_1d", "--retention-hours", "0", "--format", "json")
    assert again == []
    assert all(lake.stored(f"curated/bars_1d/{r['file']}") is False for r in deleted)
    live = lake.delta("curated/bars_1d").file_uris()
    assert live and all(lake.stored(f"curated/bars_1d/{Path(uri).name}") for uri in live)
    assert _content(lake.delta("curated/bars_1d")) == bars_content
