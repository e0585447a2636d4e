"""Raw payloads and quarantine, run on local disk and on S3."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pytest

from marketlake.errors import TerminalError
from marketlake.lake import LakeStorage, LakeTables
from marketlake.lake.quarantine import quarantine_rows, read_quarantine, write_quarantine
from marketlake.lake.raw import list_raw, read_raw, write_raw
from marketlake.schemas import QUARANTINE_SCHEMA

DAY = date(2024, 3, 1)


def test_raw_write_is_deterministic_and_idempotent(lake_storage: LakeStorage) -> None:
    payload = json.dumps({"chart": {"result": [1, 2, 3]}}).encode()
    kwargs: dict[str, Any] = {
        "source": "yahoo",
        "dataset": "bars_1d",
        "fmt": "json",
        "ingest_date": DAY,
    }
    path = write_raw(lake_storage, batch_id="AAPL-2024", payload=payload, **kwargs)
    assert path == "raw/yahoo/bars_1d/ingest_date=2024-03-01/AAPL-2024.json.gz"
    stored = lake_storage.read_bytes(path)
    assert gzip.decompress(stored) == payload
    assert write_raw(lake_storage, batch_id="AAPL-2024", payload=payload, **kwargs) == path
    assert lake_storage.read_bytes(path) == stored
    other = write_raw(lake_storage, batch_id="AAPL-copy", payload=payload, **kwargs)
    assert lake_storage.read_bytes(other) == stored
    assert read_raw(lake_storage, path) == payload


def test_list_raw_filters_by_source_and_dataset(lake_storage: LakeStorage) -> None:
    for source, dataset in [("yahoo", "bars_1d"), ("yahoo", "actions"), ("sim", "bars_1d")]:
        write_raw(
            lake_storage,
            source=source,
            dataset=dataset,
            batch_id="b1",
            payload=b"{}",
            fmt="json",
            ingest_date=DAY,
        )
    assert len(list_raw(lake_storage)) == 3
    assert [p.split("/")[2] for p in list_raw(lake_storage, source="yahoo")] == [
        "actions",
        "bars_1d",
    ]
    assert [p.split("/")[1] for p in list_raw(lake_storage, dataset="bars_1d")] == [
        "sim",
        "yahoo",
    ]
    assert list_raw(lake_storage, source="yahoo", dataset="actions") == [
        "raw/yahoo/actions/ingest_date=2024-03-01/b1.json.gz"
    ]


@pytest.mark.parametrize("batch_id", ["../x", "a/b", "", ".hidden", "a b", "x..y"])
def test_unsafe_batch_ids_are_rejected(lake_storage: LakeStorage, batch_id: str) -> None:
    with pytest.raises(TerminalError, match="batch id"):
        write_raw(
            lake_storage,
            source="sim",
            dataset="bars_1d",
            batch_id=batch_id,
            payload=b"",
            fmt="json",
            ingest_date=DAY,
        )


def _bad_rows() -> pa.Table:
    return pa.table(
        {
            "symbol": ["AAPL", "MSFT"],
            "ts": pa.array([datetime(2024, 1, 2, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC")),
            "close": [-1.0, float("nan")],
            "source": ["sim", "sim"],
        }
    )


def test_quarantine_rows_keep_the_record_and_its_id() -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    rows = quarantine_rows("bars_1d", _bad_rows(), "price_positive", ["negative", "nan"], now=now)
    assert rows.schema == QUARANTINE_SCHEMA
    first = rows.to_pylist()[0]
    record = '{"close":-1.0,"source":"sim","symbol":"AAPL","ts":"2024-01-02T00:00:00+00:00"}'
    assert first["record"] == record
    assert first["record_id"] == hashlib.sha1(f"bars_1d\n{record}".encode()).hexdigest()
    assert (first["symbol"], first["source"], first["detail"]) == ("AAPL", "sim", "negative")
    assert first["ts"] == datetime(2024, 1, 2, tzinfo=UTC)
    assert json.loads(rows.to_pylist()[1]["record"])["close"] == "NaN"
    with pytest.raises(TerminalError, match="details"):
        quarantine_rows("bars_1d", _bad_rows(), "rule", ["only one"])


def test_quarantine_round_trip_is_exactly_once(lake_storage: LakeStorage) -> None:
    tables = LakeTables(lake_storage)
    bars = quarantine_rows("bars_1d", _bad_rows(), "price_positive", "bad price")
    ticks = quarantine_rows(
        "ticks", pa.table({"symbol": ["V"], "price": [0.0]}), "price_positive", "zero", "replay"
    )
    rejects = pa.concat_tables([bars, ticks, bars])
    assert write_quarantine(tables, rejects) == {"bars_1d": 2, "ticks": 1}
    later = quarantine_rows("bars_1d", _bad_rows(), "price_positive", "bad price")
    write_quarantine(tables, later)
    stored = read_quarantine(tables)
    assert stored.num_rows == 3
    assert stored.schema == QUARANTINE_SCHEMA
    assert sorted(tables.list_tables()) == ["quarantine/bars_1d", "quarantine/ticks"]
    by_id = {row["record_id"]: row for row in stored.to_pylist()}
    assert {r["record_id"] for r in rejects.to_pylist()} == set(by_id)
    tick = next(r for r in by_id.values() if r["dataset"] == "ticks")
    assert (tick["source"], tick["symbol"], tick["ts"]) == ("replay", "V", None)
