"""Lake maintenance on local disk and S3: table discovery, compaction, vacuum, time travel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from marketlake.analytics.adjust import apply_spans
from marketlake.errors import TerminalError
from marketlake.lake import LakeStorage, LakeTables
from marketlake.lake.maintenance import (
    choose_tables,
    describe_table,
    find_tables,
    history_rows,
    probe_writes,
    vacuum_table,
)
from marketlake.lake.snapshots import Snapshot, parse_snapshot, read_snapshot
from marketlake.pipeline.reprocess import reprocess_snapshot
from marketlake.schemas import BAR_KEYS, CORPORATE_ACTION_SCHEMA

BARS = "curated/bars_1d"


def _delta(tables: LakeTables, name: str, version: int | None = None) -> DeltaTable:
    """The table opened by deltalake itself, as an independent reader."""
    storage = tables.storage
    return DeltaTable(storage.uri(name), version=version, storage_options=storage.storage_options())


def _three_commits(tables: LakeTables, make_bars) -> None:  # type: ignore[no-untyped-def]
    tables.merge(BARS, make_bars(["AAPL"], days=3), BAR_KEYS)
    tables.merge(BARS, make_bars(["MSFT"], days=3), BAR_KEYS)
    tables.merge(BARS, make_bars(["AAPL"], days=2, start_day=3), BAR_KEYS)


def test_find_and_describe_tables(lake_tables: LakeTables, make_bars) -> None:  # type: ignore[no-untyped-def]
    assert find_tables(lake_tables.storage) == []
    _three_commits(lake_tables, make_bars)
    lake_tables.merge("quality/checks", pa.table({"k": [1, 2]}), ["k"])
    lake_tables.storage.write_bytes("raw/sim/bars_1d/x.json.gz", b"x")
    assert find_tables(lake_tables.storage) == ["curated/bars_1d", "quality/checks"]
    info = describe_table(lake_tables.storage, BARS)
    independent = _delta(lake_tables, BARS)
    assert info.version == independent.version() == 2
    assert info.rows == independent.to_pyarrow_table().num_rows == 8
    assert info.files == len(independent.file_uris()) == 3
    assert info.size_bytes > 0
    with pytest.raises(TerminalError, match="tables found: curated/bars_1d, quality/checks"):
        choose_tables(lake_tables.storage, ["curated/nope"])


def test_compact_keeps_rows_and_vacuum_removes_old_files(
    lake_tables: LakeTables,
    make_bars,  # type: ignore[no-untyped-def]
) -> None:
    _three_commits(lake_tables, make_bars)
    before = lake_tables.read(BARS).sort_by([("symbol", "ascending"), ("ts", "ascending")])
    metrics = lake_tables.compact(BARS)
    assert metrics["numFilesRemoved"] == 3 and metrics["numFilesAdded"] == 1
    after = describe_table(lake_tables.storage, BARS)
    assert (after.files, after.rows, after.version) == (1, 8, 3)
    assert (
        _delta(lake_tables, BARS)
        .to_pyarrow_table()
        .sort_by([("symbol", "ascending"), ("ts", "ascending")])
        .equals(before)
    )

    # A data file no commit refers to, as a write cut off before its commit leaves behind.
    orphan = f"{BARS}/part-00000-orphan-c000.snappy.parquet"
    lake_tables.storage.write_bytes(orphan, b"not committed")

    assert vacuum_table(lake_tables.storage, BARS, retention_hours=24, dry_run=True) == []
    planned = vacuum_table(lake_tables.storage, BARS, retention_hours=0, dry_run=True)
    assert len(planned) == 4 and "part-00000-orphan-c000.snappy.parquet" in planned
    stored = lake_tables.storage.list_files(BARS)
    assert all(f"{BARS}/{path}" in stored for path in planned)
    deleted = vacuum_table(lake_tables.storage, BARS, retention_hours=0)
    assert deleted == planned
    remaining = lake_tables.storage.list_files(BARS)
    assert not any(f"{BARS}/{path}" in remaining for path in deleted)
    assert vacuum_table(lake_tables.storage, BARS, retention_hours=0) == []
    assert lake_tables.read(BARS).num_rows == 8
    with pytest.raises(Exception):  # noqa: B017 - the old files are gone, whatever the error type
        _delta(lake_tables, BARS, version=1).to_pyarrow_table()


def test_history_lists_each_commit_newest_first(lake_tables: LakeTables, make_bars) -> None:  # type: ignore[no-untyped-def]
    _three_commits(lake_tables, make_bars)
    rows = history_rows(lake_tables.storage, BARS).to_pylist()
    assert [r["version"] for r in rows] == [2, 1, 0]
    # MSFT's rows could be in no file yet, so that merge was committed as a plain append
    assert [r["operation"] for r in rows] == ["MERGE", "WRITE", "WRITE"]
    assert [r["rows_added"] for r in rows] == [2, 3, 3]
    assert all(r["committed_at"].tzinfo is not None for r in rows)
    latest = history_rows(lake_tables.storage, BARS, limit=1).to_pylist()
    assert [r["version"] for r in latest] == [2]


def test_read_snapshot_by_version_and_time(lake_tables: LakeTables, make_bars) -> None:  # type: ignore[no-untyped-def]
    lake_tables.merge(BARS, make_bars(["AAPL"], days=3), BAR_KEYS)
    between = datetime.now(UTC)
    lake_tables.merge(BARS, make_bars(["MSFT"], days=4), BAR_KEYS)
    assert read_snapshot(lake_tables, BARS, Snapshot(version=0)).num_rows == 3
    assert read_snapshot(lake_tables, BARS, Snapshot(at=between)).num_rows == 3
    assert read_snapshot(lake_tables, BARS).num_rows == 7
    msft = read_snapshot(lake_tables, BARS, symbols=["MSFT"], limit=2)
    assert msft.column("symbol").to_pylist() == ["MSFT", "MSFT"]
    assert msft.column("ts").to_pylist() == sorted(msft.column("ts").to_pylist())
    with pytest.raises(TerminalError, match="versions run from 0 to 1"):
        read_snapshot(lake_tables, BARS, Snapshot(version=5))
    with pytest.raises(TerminalError, match="no version as of"):
        read_snapshot(lake_tables, BARS, Snapshot(at=between - timedelta(days=1)))


def test_parse_snapshot() -> None:
    assert parse_snapshot("12") == Snapshot(version=12)
    assert parse_snapshot("2024-06-01") == Snapshot(at=datetime(2024, 6, 1, tzinfo=UTC))
    moment = parse_snapshot("2024-06-01T12:00:00+02:00").at
    assert moment is not None and moment == datetime(2024, 6, 1, 10, tzinfo=UTC)
    assert parse_snapshot("2024-06-01T10:00:00Z").at == datetime(2024, 6, 1, 10, tzinfo=UTC)
    with pytest.raises(TerminalError, match="table version"):
        parse_snapshot("yesterday")


def test_probe_writes_leaves_nothing_behind(lake_storage: LakeStorage) -> None:
    path = probe_writes(lake_storage)
    assert path.startswith("_doctor/probe-")
    assert lake_storage.list_files() == []


def test_reprocess_uses_the_snapshot_bars_and_actions(lake_tables: LakeTables, make_bars) -> None:  # type: ignore[no-untyped-def]
    bars = make_bars(["AAPL", "MSFT"], days=30, close=100.0)
    lake_tables.merge(BARS, bars, BAR_KEYS)
    later_ts = pc.max(bars.column("ts")).as_py() + timedelta(days=1)
    split = pa.Table.from_pylist(
        [
            {
                "symbol": "AAPL",
                "ex_date": later_ts,
                "kind": "split",
                "ratio": 2.0,
                "amount": None,
                "source": "sim",
                "ingested_at": later_ts,
            }
        ],
        schema=CORPORATE_ACTION_SCHEMA,
    )
    # Version 1 of the bars: a later AAPL session, and a 2:1 split effective on it.
    lake_tables.merge("curated/corporate_actions", split, ["symbol", "ex_date", "kind"])
    lake_tables.merge(BARS, make_bars(["AAPL"], days=1, close=60.0, start_day=30), BAR_KEYS)

    result = reprocess_snapshot(lake_tables, Snapshot(version=0))
    assert (result.bars_version, result.actions_version) == (0, None)
    # adjusted bars are derived at read time: the snapshot's bars times the factors computed
    adjusted = apply_spans(
        lake_tables.read(BARS, version=0), lake_tables.read("analytics/adjustment_factors")
    )
    assert adjusted.num_rows == 60  # the snapshot's 30 sessions of two symbols
    assert (
        adjusted.sort_by([("symbol", "ascending"), ("ts", "ascending")]).column("close").to_pylist()
        == bars.column("close").to_pylist()
    )  # no split yet: prices as traded

    latest = reprocess_snapshot(lake_tables, Snapshot(version=1), symbols=["AAPL"])
    assert latest.actions_version == 0 and latest.symbols == ["AAPL"]
    aapl = apply_spans(
        lake_tables.read(BARS, filter=pc.field("symbol") == "AAPL"),
        lake_tables.read("analytics/adjustment_factors"),
    )
    assert aapl.num_rows == 31
    before_split = aapl.column("close").to_pylist()[:30]
    assert before_split == pytest.approx([c / 2 for c in bars.column("close").to_pylist()[:30]])
    metrics = lake_tables.read("analytics/daily_metrics")
    assert sorted(set(metrics.column("symbol").to_pylist())) == ["AAPL", "MSFT"]
    assert metrics.num_rows == 61


def test_reprocess_of_a_missing_version_names_the_table(  # type: ignore[no-untyped-def]
    lake_tables: LakeTables, make_bars
) -> None:
    lake_tables.merge(BARS, make_bars(["AAPL"], days=5, close=100.0), BAR_KEYS)
    with pytest.raises(TerminalError) as raised:
        reprocess_snapshot(lake_tables, Snapshot(version=7))
    assert str(raised.value) == "table curated/bars_1d has no version 7: versions run from 0 to 0"
    early = Snapshot(at=datetime(2000, 1, 3, tzinfo=UTC))
    with pytest.raises(TerminalError, match=r"^curated/bars_1d has no version as of 2000-01-03"):
        reprocess_snapshot(lake_tables, early)
