"""Quarantine rows: every builder writes the same record JSON and the same record id."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from marketlake.errors import TerminalError
from marketlake.records import Reject, quarantine_rows, reject_table
from marketlake.schemas import QUARANTINE_SCHEMA, TICK_SCHEMA
from marketlake.sources.files.rejects import make_reject
from marketlake.streaming.validation import split_invalid_ticks

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
    file_reject = reject_table(
        [make_reject(record, "unparsable_number", "f.csv line 2: close")], NOW
    ).to_pylist()[0]
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
