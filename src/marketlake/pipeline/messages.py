"""History messages on the bus: one Arrow IPC stream per dataset and batch, keyed by symbol."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.ipc as ipc

HISTORY_TOPIC = "history.daily"
DATASET_HEADER = "dataset"
SOURCE_HEADER = "source"
BATCH_HEADER = "batch"


def encode_table(table: pa.Table) -> bytes:
    """Serialise ``table`` as an Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def decode_table(data: bytes) -> pa.Table:
    """Read an Arrow IPC stream written by :func:`encode_table`."""
    return ipc.open_stream(pa.py_buffer(data)).read_all()


def history_headers(dataset: str, source: str, batch_id: str) -> Mapping[str, str]:
    """The headers of a history message."""
    return {DATASET_HEADER: dataset, SOURCE_HEADER: source, BATCH_HEADER: batch_id}
