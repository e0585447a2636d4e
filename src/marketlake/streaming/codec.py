"""Encoding of tick batches for the bus: one Arrow IPC stream per message.

Producers send one message per (symbol, batch), keyed by the symbol so the bus keeps each
symbol's ticks in order on one partition; :func:`split_by_symbol` cuts a mixed batch into
those per-symbol batches without copying rows one by one.
"""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from marketlake.errors import TerminalError
from marketlake.schemas import TICK_SCHEMA

CONTENT_TYPE = "application/vnd.apache.arrow.stream; schema=tick"


def encode_ticks(batch: pa.RecordBatch | pa.Table) -> bytes:
    """``batch`` (Tick schema) as Arrow IPC stream bytes."""
    if not batch.schema.equals(TICK_SCHEMA):
        raise TerminalError(
            f"cannot encode ticks: schema {batch.schema.names} does not match the Tick schema "
            f"{TICK_SCHEMA.names}"
        )
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, TICK_SCHEMA) as writer:
        if isinstance(batch, pa.Table):
            writer.write_table(batch)
        else:
            writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def decode_ticks(data: bytes) -> pa.RecordBatch:
    """The tick batch encoded in ``data`` by :func:`encode_ticks` (zero-copy when possible).

    A stream whose schema message is the Tick schema's own bytes (every message
    :func:`encode_ticks` wrote) has its batches read without parsing the schema again: half
    the cost of a poll's few-tick messages. Any other stream is read and checked in full.
    """
    try:
        reader = ipc.MessageReader.open_stream(pa.py_buffer(data))
        if reader.read_next_message().metadata.equals(_tick_schema_message()):
            batches = [ipc.read_record_batch(message, TICK_SCHEMA) for message in reader]
            return _one_batch(batches)
    except (pa.ArrowInvalid, OSError, StopIteration):
        pass  # read again below, which says what is wrong
    return _decode_checked(data)


def _decode_checked(data: bytes) -> pa.RecordBatch:
    try:
        reader = ipc.open_stream(pa.py_buffer(data))
        batches = list(reader)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TerminalError(f"cannot decode a tick batch of {len(data)} bytes: {exc}") from exc
    if not reader.schema.equals(TICK_SCHEMA):
        raise TerminalError(
            f"decoded batch has columns {reader.schema.names}, not the Tick schema "
            f"{TICK_SCHEMA.names}"
        )
    return _one_batch(batches)


def _one_batch(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    table = pa.Table.from_batches(batches, TICK_SCHEMA).combine_chunks()
    if table.num_rows == 0:
        return pa.RecordBatch.from_pylist([], schema=TICK_SCHEMA)
    return table.to_batches()[0]


@lru_cache(maxsize=1)
def _tick_schema_message() -> pa.Buffer:
    """The metadata of the schema message :func:`encode_ticks` writes first."""
    reader = ipc.MessageReader.open_stream(pa.py_buffer(encode_ticks(TICK_SCHEMA.empty_table())))
    return reader.read_next_message().metadata


def split_by_symbol(batch: pa.RecordBatch) -> list[tuple[str, pa.RecordBatch]]:
    """``batch`` cut into one batch per symbol (rows keep their order within a symbol)."""
    if batch.num_rows == 0:
        return []
    symbols = batch.column(batch.schema.get_field_index("symbol"))
    order = pc.sort_indices(symbols)  # stable: keeps arrival order within a symbol
    ordered = batch.take(order)
    keys = ordered.column(ordered.schema.get_field_index("symbol"))
    runs = pc.run_end_encode(keys)
    ends = runs.run_ends.to_pylist()
    values = runs.values.to_pylist()
    parts: list[tuple[str, pa.RecordBatch]] = []
    start = 0
    for symbol, end in zip(values, ends, strict=True):
        parts.append((symbol, ordered.slice(start, end - start)))
        start = end
    return parts
