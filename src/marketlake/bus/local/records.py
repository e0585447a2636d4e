"""The on-disk record format of the local log.

A record is ``[body length u32][crc32 of body u32][body]`` and the body is
``[timestamp_ms i64][key length u16][headers length u32][key][headers][value]``.
Headers are a sequence of ``[name length u16][value length u32][name][value]``.
All integers are little-endian. A record whose length runs past the end of the file or whose
CRC does not match is a torn write, never data.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from types import MappingProxyType
from zlib import crc32

from marketlake.bus.base import Message
from marketlake.errors import ConfigError, TerminalError

PREFIX = struct.Struct("<II")
BODY = struct.Struct("<qHI")
HEADER = struct.Struct("<HI")
MIN_BODY = BODY.size
MAX_KEY_BYTES = 0xFFFF
EMPTY_HEADERS: Mapping[str, str] = MappingProxyType({})

_new_message = Message.__new__


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """The binary form of ``headers``."""
    parts: list[bytes] = []
    for name, value in headers.items():
        name_b, value_b = name.encode(), value.encode()
        parts.append(HEADER.pack(len(name_b), len(value_b)) + name_b + value_b)
    return b"".join(parts)


def decode_headers(data: bytes) -> Mapping[str, str]:
    """The headers encoded in ``data`` by :func:`encode_headers`."""
    headers: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        name_len, value_len = HEADER.unpack_from(data, pos)
        pos += HEADER.size
        name = data[pos : pos + name_len].decode()
        pos += name_len
        headers[name] = data[pos : pos + value_len].decode()
        pos += value_len
    return MappingProxyType(headers)


def encode_record(timestamp_ms: int, key: bytes, headers: bytes, value: bytes) -> bytes:
    """One framed record."""
    if len(key) > MAX_KEY_BYTES:
        raise ConfigError(f"message key is {len(key)} bytes; at most {MAX_KEY_BYTES} are allowed")
    head = BODY.pack(timestamp_ms, len(key), len(headers)) + key + headers
    size = len(head) + len(value)
    # the value is copied once, into the record (not into a body first)
    return b"".join((PREFIX.pack(size, crc32(value, crc32(head))), head, value))


def parse_records(
    buf: bytes, pos: int, limit: int, topic: str, partition: int, offset: int
) -> tuple[list[Message], int, int]:
    """Messages framed in ``buf`` from ``pos``, at most ``limit``.

    Returns the messages, the position after the last one, and a status for what follows: 0 when
    the buffer ends cleanly or the limit was reached, the byte count of the incomplete record
    that follows when it runs past the buffer, and -1 when a complete record there is invalid.
    """
    out: list[Message] = []
    append = out.append
    end_of_buf = len(buf)
    view = memoryview(buf)
    unpack_prefix = PREFIX.unpack_from
    unpack_body = BODY.unpack_from
    set_fields = object.__setattr__
    new = _new_message
    keys: dict[bytes, str] = {}
    count = 0
    while count < limit:
        if pos + 8 > end_of_buf:
            return out, pos, (8 if pos < end_of_buf else 0)
        body_len, crc = unpack_prefix(buf, pos)
        end = pos + 8 + body_len
        if body_len < MIN_BODY:
            return out, pos, -1
        if end > end_of_buf:
            return out, pos, 8 + body_len
        if crc32(view[pos + 8 : end]) != crc:
            return out, pos, -1
        timestamp_ms, key_len, headers_len = unpack_body(buf, pos + 8)
        key_start = pos + 8 + MIN_BODY
        key_end = key_start + key_len
        key_bytes = buf[key_start:key_end]
        key = keys.get(key_bytes)
        if key is None:
            key = keys[key_bytes] = key_bytes.decode()
        value_start = key_end + headers_len
        message = new(Message)
        # Fills the frozen dataclass directly: the hot read path skips its per-field __setattr__.
        set_fields(
            message,
            "__dict__",
            {
                "topic": topic,
                "partition": partition,
                "offset": offset + count,
                "key": key,
                "value": buf[value_start:end],
                "headers": (
                    decode_headers(buf[key_end:value_start]) if headers_len else EMPTY_HEADERS
                ),
                "timestamp_ms": timestamp_ms,
            },
        )
        append(message)
        count += 1
        pos = end
    return out, pos, 0


class CorruptLogError(TerminalError):
    """A finished part of the local log holds bytes that are not valid records."""
