"""Segment files of one partition: naming, the sparse offset index, scanning and retention.

A partition folder holds ``<base offset>.log`` segments (records, see
:mod:`marketlake.bus.local.records`) and beside each an ``<base offset>.idx`` of fixed 16-byte
entries ``(end offset i64, end position i64)``, appended after every flushed batch. The index is
a hint: entries are checked against the segment's size and a reader scans forward from the
last usable one.
"""

from __future__ import annotations

import itertools
import os
import struct
import time
from pathlib import Path
from zlib import crc32

from marketlake.bus.local.records import MIN_BODY, PREFIX

INDEX_ENTRY = struct.Struct("<qq")
SCAN_CHUNK = 1 << 20
_NAME_DIGITS = 20


def segment_path(folder: Path, base: int) -> Path:
    """The segment file starting at offset ``base``."""
    return folder / f"{base:0{_NAME_DIGITS}d}.log"


def index_path(folder: Path, base: int) -> Path:
    """The index file of the segment starting at offset ``base``."""
    return folder / f"{base:0{_NAME_DIGITS}d}.idx"


def list_segments(folder: Path) -> list[int]:
    """Base offsets of the segments in ``folder``, oldest first."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(int(name[:-4]) for name in names if name.endswith(".log"))


def read_index(folder: Path, base: int, size: int) -> list[tuple[int, int]]:
    """The usable index entries of a segment of ``size`` bytes: increasing and inside the file."""
    try:
        data = index_path(folder, base).read_bytes()
    except FileNotFoundError:
        return []
    entries: list[tuple[int, int]] = []
    last_offset, last_pos = base, 0
    whole = len(data) - len(data) % INDEX_ENTRY.size
    for offset, pos in INDEX_ENTRY.iter_unpack(data[:whole]):
        if offset < last_offset or pos < last_pos or pos > size:
            break
        entries.append((offset, pos))
        last_offset, last_pos = offset, pos
    return entries


def scan(
    fd: int, pos: int, offset: int, stop_offset: int | None = None, validate: bool = False
) -> tuple[int, int]:
    """Walk records from ``(pos, offset)`` to ``stop_offset``, the end of the file or a torn record.

    Returns ``(offset, pos)`` of the first record not walked over. With ``validate`` each
    record's CRC is checked, so the result is the end of the valid prefix.
    """
    unpack_prefix = PREFIX.unpack_from
    while stop_offset is None or offset < stop_offset:
        chunk = os.pread(fd, SCAN_CHUNK, pos)
        rel, size = 0, len(chunk)
        while rel + 8 <= size and (stop_offset is None or offset < stop_offset):
            body_len, crc = unpack_prefix(chunk, rel)
            end = rel + 8 + body_len
            if body_len < MIN_BODY:
                return offset, pos + rel
            if end > size:
                break
            if validate and crc32(chunk[rel + 8 : end]) != crc:
                return offset, pos + rel
            rel = end
            offset += 1
        if rel:
            pos += rel
            continue
        if size < 8:
            return offset, pos
        body_len, crc = unpack_prefix(chunk, 0)
        record = os.pread(fd, 8 + body_len, pos)
        if len(record) < 8 + body_len or (validate and crc32(record[8:]) != crc):
            return offset, pos
        pos += 8 + body_len
        offset += 1
    return offset, pos


def locate(folder: Path, base: int, fd: int, target: int) -> tuple[int, int]:
    """``(offset, position)`` of record ``target`` in a segment, or of its end if it is shorter."""
    size = os.fstat(fd).st_size
    offset, pos = base, 0
    for entry_offset, entry_pos in read_index(folder, base, size):
        if entry_offset > target:
            break
        offset, pos = entry_offset, entry_pos
    return scan(fd, pos, offset, stop_offset=target)


def end_offset(folder: Path) -> int:
    """The offset the next record appended to the partition in ``folder`` will get."""
    while True:
        segments = list_segments(folder)
        if not segments:
            return 0
        base = segments[-1]
        try:
            fd = os.open(segment_path(folder, base), os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            return locate(folder, base, fd, 2**62)[0]
        finally:
            os.close(fd)


def start_offset(folder: Path) -> int:
    """The earliest offset still stored in the partition in ``folder``."""
    segments = list_segments(folder)
    return segments[0] if segments else 0


def delete_expired(folder: Path, retention_bytes: int | None, retention_ms: int | None) -> int:
    """Delete the oldest segments past the retention limits; the newest segment always stays.

    A segment goes when the rest of the partition still holds ``retention_bytes``, or when its
    last append is older than ``retention_ms``. Returns the number of segments deleted.
    """
    segments = list_segments(folder)
    stats = [segment_path(folder, base).stat() for base in segments]
    total = sum(stat.st_size for stat in stats)
    now_ms = time.time() * 1000
    deleted = 0
    for base, stat in zip(segments[:-1], stats[:-1], strict=True):
        too_big = retention_bytes is not None and total - stat.st_size >= retention_bytes
        too_old = retention_ms is not None and stat.st_mtime * 1000 < now_ms - retention_ms
        if not (too_big or too_old):
            break
        segment_path(folder, base).unlink()
        index_path(folder, base).unlink(missing_ok=True)
        total -= stat.st_size
        deleted += 1
    return deleted


def delete_below(folder: Path, offset: int) -> tuple[int, int]:
    """Delete the oldest segments whose every record is below ``offset``; the newest segment
    always stays. Returns the segments and records deleted."""
    segments = list_segments(folder)
    deleted = records = 0
    for base, following in itertools.pairwise(segments):
        if following > offset:
            break
        segment_path(folder, base).unlink()
        index_path(folder, base).unlink(missing_ok=True)
        deleted += 1
        records += following - base
    return deleted, records


def sync_folder(folder: Path) -> None:
    """Make the creation, renaming and deletion of entries in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
