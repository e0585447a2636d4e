"""Appending batches to one partition of the local log, safely across processes."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from marketlake.bus.local.segments import (
    INDEX_ENTRY,
    delete_below,
    delete_expired,
    index_path,
    list_segments,
    read_index,
    scan,
    segment_path,
    sync_folder,
    write_all,
)


class PartitionAppender:
    """Writes batches of framed records to a partition under its ``flock``.

    Before each batch the appender checks that its view of the newest segment is current (another
    process may have appended or rolled); when it is not, it reopens the newest segment and cuts
    off a torn tail left by a process that died mid-write.
    """

    def __init__(
        self,
        folder: Path,
        segment_bytes: int,
        retention_bytes: int | None = None,
        retention_ms: int | None = None,
    ) -> None:
        self._folder = folder
        self._segment_bytes = segment_bytes
        self._retention_bytes = retention_bytes
        self._retention_ms = retention_ms
        folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        self._fd = -1
        self._index_fd = -1
        self._base = -1
        self._size = 0
        self._end = 0
        self._written = (0, 0)  # bytes and records written but not synced yet

    def append(self, records: list[bytes], count: int) -> None:
        """Append ``count`` framed records (their bytes in ``records``) and fsync them."""
        self.write(records, count)
        self.sync()

    def write(self, records: list[bytes], count: int) -> None:
        """First half of :meth:`append`: take the partition's lock and write the records,
        readable from now on but not durable until :meth:`sync`, which must follow (it
        releases the lock)."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self._catch_up()
            if self._size >= self._segment_bytes:
                self._roll()
            data = b"".join(records)
            write_all(self._fd, data)
        except BaseException:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            raise
        self._written = (len(data), count)

    def sync(self) -> None:
        """Second half of :meth:`append`: fsync what :meth:`write` wrote, index it and
        release the lock."""
        try:
            size, count = self._written
            os.fsync(self._fd)
            self._size += size
            self._end += count
            write_all(self._index_fd, INDEX_ENTRY.pack(self._end, self._size))
        finally:
            self._written = (0, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def recover(self) -> None:
        """Cut off a torn tail of the newest segment, if there is one."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self._catch_up()
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def delete_expired(self) -> int:
        """Apply retention to this partition; returns the number of segments deleted."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            return delete_expired(self._folder, self._retention_bytes, self._retention_ms)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def delete_below(self, offset: int) -> tuple[int, int]:
        """Delete the segments wholly below ``offset``; returns the segments and records."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            return delete_below(self._folder, offset)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Release the files."""
        self._close_segment()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _catch_up(self) -> None:
        segments = list_segments(self._folder)
        if not segments:
            self._open_segment(0, create=True)
            self._size, self._end = 0, 0
            return
        base = segments[-1]
        if base == self._base and os.fstat(self._fd).st_size == self._size:
            return
        self._open_segment(base, create=False)
        size = os.fstat(self._fd).st_size
        entries = read_index(self._folder, base, size)
        if os.fstat(self._index_fd).st_size != len(entries) * INDEX_ENTRY.size:
            os.ftruncate(self._index_fd, len(entries) * INDEX_ENTRY.size)
        offset, pos = entries[-1] if entries else (base, 0)
        self._end, self._size = scan(self._fd, pos, offset, validate=True)
        if self._size < size:
            os.ftruncate(self._fd, self._size)
            os.fsync(self._fd)

    def _roll(self) -> None:
        self._open_segment(self._end, create=True)
        self._size = 0
        if self._retention_bytes is not None or self._retention_ms is not None:
            delete_expired(self._folder, self._retention_bytes, self._retention_ms)

    def _open_segment(self, base: int, create: bool) -> None:
        self._close_segment()
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT | os.O_EXCL if create else 0)
        self._fd = os.open(segment_path(self._folder, base), flags, 0o644)
        self._index_fd = os.open(
            index_path(self._folder, base), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644
        )
        self._base = base
        if create:
            sync_folder(self._folder)

    def _close_segment(self) -> None:
        for fd in (self._fd, self._index_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._index_fd = -1
        self._base = -1
