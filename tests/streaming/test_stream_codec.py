"""Arrow IPC encoding of tick batches for the bus."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from marketlake.errors import TerminalError
from marketlake.schemas import TICK_SCHEMA
from marketlake.sources.live import SimTickSource
from marketlake.streaming.codec import decode_ticks, encode_ticks, split_by_symbol

START = datetime(2025, 11, 25, 14, 30, tzinfo=UTC)


def _batch() -> pa.RecordBatch:
    source = SimTickSource(["AAPL", "MSFT", "BRK.B"], start=START, count=5_000, batch_size=5_000)
    return next(iter(source.ticks()))


def test_round_trip_keeps_every_value() -> None:
    batch = _batch()
    decoded = decode_ticks(encode_ticks(batch))
    assert decoded.schema.equals(TICK_SCHEMA)
    assert decoded.equals(batch)


def test_round_trip_of_a_chunked_table_and_an_empty_batch() -> None:
    batch = _batch()
    table = pa.Table.from_batches([batch.slice(0, 10), batch.slice(10, 20)])
    assert decode_ticks(encode_ticks(table)).equals(batch.slice(0, 30))
    empty = batch.slice(0, 0)
    assert decode_ticks(encode_ticks(empty)).num_rows == 0


def test_wrong_schema_and_garbage_are_refused() -> None:
    with pytest.raises(TerminalError, match="Tick schema"):
        encode_ticks(pa.record_batch({"symbol": ["AAPL"]}))
    with pytest.raises(TerminalError, match="cannot decode"):
        decode_ticks(b"not arrow at all")
    sink = pa.BufferOutputStream()
    other = pa.record_batch({"x": [1]})
    with pa.ipc.new_stream(sink, other.schema) as writer:
        writer.write_batch(other)
    with pytest.raises(TerminalError, match="not the Tick schema"):
        decode_ticks(sink.getvalue().to_pybytes())


def test_split_by_symbol_keeps_order_within_each_symbol() -> None:
    batch = _batch()
    parts = split_by_symbol(batch)
    assert sorted(symbol for symbol, _ in parts) == ["AAPL", "BRK.B", "MSFT"]
    assert sum(part.num_rows for _, part in parts) == batch.num_rows
    rows = batch.to_pylist()
    for symbol, part in parts:
        assert set(part.column("symbol").to_pylist()) == {symbol}
        expected = [r["seq"] for r in rows if r["symbol"] == symbol]
        assert part.column("seq").to_pylist() == expected
    assert split_by_symbol(batch.slice(0, 0)) == []


def test_a_tick_stream_cut_inside_a_batch_is_refused() -> None:
    """The schema message matches the Tick schema, so the batches are read without parsing
    it again; a batch cut short still fails to decode, as every other broken payload."""
    data = encode_ticks(_batch())
    for cut in (20, 100, 300):
        with pytest.raises(TerminalError, match="cannot decode"):
            decode_ticks(data[:-cut])
