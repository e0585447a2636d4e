"""The quarantine's lake tables, written and read back, on local disk and on S3."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from marketlake.lake import LakeStorage, LakeTables
from marketlake.lake.quarantine import read_quarantine, write_quarantine
from marketlake.records import quarantine_rows
from marketlake.schemas import QUARANTINE_SCHEMA


def _bad_rows() -> pa.Table:
    return pa.table(
        {
            "symbol": ["AAPL", "MSFT"],
            "ts": pa.array([datetime(2024, 1, 2, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC")),
            "close": [-1.0, float("nan")],
            "source": ["sim", "sim"],
        }
    )


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
