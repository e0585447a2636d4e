"""Every quarantine builder writes the same record JSON and the same record id."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pyarrow as pa

from marketlake.lake.quarantine import quarantine_rows
from marketlake.records import Reject, reject_table
from marketlake.schemas import TICK_SCHEMA
from marketlake.sources.files.rejects import make_reject
from marketlake.streaming.quarantine import split_invalid_ticks

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)


def _expected_id(dataset: str, record: str) -> str:
    return hashlib.sha1(f"{dataset}\n{record}".encode()).hexdigest()


def test_tick_rejected_by_stream_and_lake_builders_gets_one_id() -> None:
    ts = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    tick = {"symbol": "AAPL", "ts": ts, "price": -1.0, "size": 5.0, "source": "sim", "seq": 7}
    table = pa.Table.from_pylist([tick], schema=TICK_SCHEMA)
    _, streamed = split_invalid_ticks(table, NOW)
    lake_row = quarantine_rows("ticks", table, "non_positive_price", "bad", now=NOW).to_pylist()[0]
    stream_row = streamed.to_pylist()[0]
    text = (
        '{"price":-1.0,"seq":7,"size":5.0,"source":"sim","symbol":"AAPL",'
        '"ts":"2024-03-01T14:30:00+00:00"}'
    )
    assert stream_row["record"] == lake_row["record"] == text
    assert stream_row["record_id"] == lake_row["record_id"] == _expected_id("ticks", text)
    assert stream_row["rule"] == "non_positive_price"


def test_source_and_file_rejects_use_sorted_json_and_the_dataset_id() -> None:
    record = {"symbol": "AAPL", "date": "2024-01-02", "close": "x"}
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    file_reject = make_reject(record, "unparsable_number", "f.csv line 2: close")
    source_row = reject_table(
        [Reject("bars_1d", "unparsable_number", "close", "AAPL", None, record, "csv")], NOW
    ).to_pylist()[0]
    assert file_reject["record"] == source_row["record"] == text
    assert file_reject["record_id"] == source_row["record_id"] == _expected_id("bars_1d", text)


def test_the_same_reject_twice_gives_the_same_key() -> None:
    record = {"symbol": "MSFT", "close": float("nan")}
    rejects = [Reject("bars_1d", "non_finite", "close", "MSFT", None, record, "sim")] * 2
    rows = reject_table(rejects, NOW).to_pylist()
    keys = {(r["dataset"], r["record_id"], r["rule"]) for r in rows}
    assert len(keys) == 1
    assert json.loads(rows[0]["record"])["close"] == "NaN"
