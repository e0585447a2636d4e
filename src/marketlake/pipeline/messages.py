"""History messages on the bus: one Arrow IPC stream per dataset and batch, keyed by symbol.

Every message names the run that published it (header ``run``): the lake writer of a run
takes only its own run's messages, so what a failed run left on the bus never ends up in
another run's lake writes.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.ipc as ipc

HISTORY_TOPIC = "history.daily"
DATASET_HEADER = "dataset"
SOURCE_HEADER = "source"
BATCH_HEADER = "batch"
RUN_HEADER = "run"
STORED_HEADER = "stored"
"""On a bars message: how many bars the lake held for its symbol when the fetch was planned,
so the lake writer can size its buckets by what it reads as well as by what arrives."""


def encode_table(table: pa.Table) -> bytes:
    """Serialise ``table`` as an Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def decode_table(data: bytes) -> pa.Table:
    """Read an Arrow IPC stream written by :func:`encode_table`."""
    return ipc.open_stream(pa.py_buffer(data)).read_all()


def history_headers(
    dataset: str, source: str, batch_id: str, run_id: str, stored: int = 0
) -> Mapping[str, str]:
    """The headers of a history message published by run ``run_id`` (``stored``: see
    :data:`STORED_HEADER`; left out when 0)."""
    headers = {
        DATASET_HEADER: dataset,
        SOURCE_HEADER: source,
        BATCH_HEADER: batch_id,
        RUN_HEADER: run_id,
    }
    if stored:
        headers[STORED_HEADER] = str(stored)
    return headers
