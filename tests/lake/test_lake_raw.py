"""Raw payloads, run on local disk and on S3."""

from __future__ import annotations

import gzip
import json
from datetime import date
from typing import Any

import pytest

from marketlake.errors import TerminalError
from marketlake.lake import LakeStorage
from marketlake.lake.raw import list_raw, read_raw, write_raw

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


def test_raw_payload_is_a_plain_gzip_member(lake_storage: LakeStorage) -> None:
    """A large payload round-trips through the standard library, and its header carries no
    time or file name (what keeps the bytes the same from one run to the next)."""
    rows = [
        [f"2024-01-{d % 28 + 1:02d}", 100.0 + d / 7, 101.5, 99.25, 100.5, 1e6 + d]
        for d in range(60_000)
    ]
    payload = json.dumps({"symbol": "AAPL", "bars": rows}).encode()
    path = write_raw(
        lake_storage,
        source="sim",
        dataset="bars_1d",
        batch_id="AAPL-big",
        payload=payload,
        fmt="json",
        ingest_date=DAY,
    )
    stored = lake_storage.read_bytes(path)
    assert len(stored) < len(payload) / 2
    assert stored[:4] == b"\x1f\x8b\x08\x00"  # gzip, deflate, no flags (no file name)
    assert stored[4:8] == b"\x00\x00\x00\x00"  # no modification time
    assert gzip.decompress(stored) == payload


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
