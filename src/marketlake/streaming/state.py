"""Processor state as bytes: named Arrow tables plus a little JSON metadata in one string.

The processor packs its state with this encoding; the runtime stores the bytes in a
checkpoint (:mod:`marketlake.streaming.runtime.offsets`) with the bus offsets they cover.

Layout: ``MAGIC``, then for the metadata and each table a 4-byte name length, the name, an
8-byte payload length and the payload (JSON for the metadata, Arrow IPC stream per table).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from marketlake.errors import TerminalError

MAGIC = b"MLSTREAM1\n"
_META = "__meta__"


def _section(name: str, payload: bytes) -> bytes:
    raw = name.encode()
    return struct.pack("<I", len(raw)) + raw + struct.pack("<Q", len(payload)) + payload


def pack_state(meta: dict[str, Any], tables: dict[str, pa.Table]) -> bytes:
    """Encode ``meta`` and ``tables`` into one checkpoint."""
    parts = [MAGIC, _section(_META, json.dumps(meta, sort_keys=True).encode())]
    for name, table in tables.items():
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        parts.append(_section(name, sink.getvalue().to_pybytes()))
    return b"".join(parts)


def unpack_state(data: bytes) -> tuple[dict[str, Any], dict[str, pa.Table]]:
    """Decode a checkpoint made by :func:`pack_state`; TerminalError when it is not one."""
    if not data.startswith(MAGIC):
        raise TerminalError("not a stream-processor checkpoint (bad header)")
    view = memoryview(data)
    pos = len(MAGIC)
    meta: dict[str, Any] | None = None
    tables: dict[str, pa.Table] = {}
    try:
        while pos < len(view):
            (name_len,) = struct.unpack_from("<I", view, pos)
            name = bytes(view[pos + 4 : pos + 4 + name_len]).decode()
            pos += 4 + name_len
            (size,) = struct.unpack_from("<Q", view, pos)
            payload = view[pos + 8 : pos + 8 + size]
            if len(payload) != size:
                raise TerminalError("stream-processor checkpoint is truncated")
            pos += 8 + size
            if name == _META:
                meta = json.loads(bytes(payload))
            else:
                tables[name] = ipc.open_stream(pa.py_buffer(payload)).read_all()
    except (struct.error, UnicodeDecodeError, ValueError, pa.ArrowInvalid) as exc:
        raise TerminalError(f"stream-processor checkpoint is corrupt: {exc}") from exc
    if meta is None:
        raise TerminalError("stream-processor checkpoint has no metadata section")
    return meta, tables
