"""Reading one partition of the local log from an offset on, across segments."""

from __future__ import annotations

import os
from pathlib import Path

from marketlake.bus.base import Message
from marketlake.bus.local.records import PREFIX, CorruptLogError, parse_records
from marketlake.bus.local.segments import SCAN_CHUNK, list_segments, locate, segment_path


class PartitionReader:
    """A cursor over one partition; sees records once a producer has written them.

    ``offset`` is the next record to return and ``(segment, position)`` where it starts.
    ``skipped`` counts records that retention deleted before they could be read.
    """

    def __init__(
        self,
        folder: Path,
        topic: str,
        partition: int,
        offset: int,
        hint: tuple[int, int] | None = None,
    ) -> None:
        self.folder = folder
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.segment = -1
        self.position = 0
        self.skipped = 0
        self._hint = hint
        self._fd = -1
        self._buf = b""
        self._buf_start = 0

    def read(self, limit: int) -> list[Message]:
        """Up to ``limit`` messages from the current offset on; fewer when the log ends."""
        if self._fd < 0 and not self._open():
            return []
        out = self._read_segment(limit)
        while len(out) < limit:
            later = [base for base in list_segments(self.folder) if base > self.segment]
            if not later:
                break
            # A newer segment exists, so this one is finished: drain what was appended before
            # the roll, then move on.
            out += self._read_segment(limit - len(out))
            if len(out) >= limit:
                break
            if self.position < os.fstat(self._fd).st_size:
                raise CorruptLogError(
                    f"{segment_path(self.folder, self.segment)} holds invalid bytes at "
                    f"position {self.position}, before the end of a finished segment"
                )
            if later[0] > self.offset:
                self.skipped += later[0] - self.offset
                self.offset = later[0]
            if not self._open():
                break
            out += self._read_segment(limit - len(out))
        return out

    def close(self) -> None:
        """Release the open segment."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _open(self) -> bool:
        """Open the segment holding ``offset`` (or the earliest one left); False if none exists."""
        while True:
            segments = list_segments(self.folder)
            if not segments:
                return False
            if self.offset < segments[0]:
                self.skipped += segments[0] - self.offset
                self.offset = segments[0]
            base = max(b for b in segments if b <= self.offset)
            try:
                fd = os.open(segment_path(self.folder, base), os.O_RDONLY)
            except FileNotFoundError:
                continue
            break
        self.close()
        self._fd = fd
        self.segment = base
        self._buf, self._buf_start = b"", 0
        hint, self._hint = self._hint, None
        if hint is not None and hint[0] == base and hint[1] <= os.fstat(fd).st_size:
            self.position = hint[1]
        else:
            self.offset, self.position = locate(self.folder, base, fd, self.offset)
        return True

    def _read_segment(self, limit: int) -> list[Message]:
        out: list[Message] = []
        fresh = False
        while len(out) < limit:
            got, end, status = parse_records(
                self._buf,
                self.position - self._buf_start,
                limit - len(out),
                self.topic,
                self.partition,
                self.offset,
            )
            if got:
                out += got
                self.offset += len(got)
                self.position = self._buf_start + end
            if len(out) >= limit or (fresh and not got):
                if fresh and status < 0:
                    self._check_tail()
                break
            self._buf = os.pread(self._fd, max(SCAN_CHUNK, status), self.position)
            self._buf_start = self.position
            fresh = True
        return out

    def _check_tail(self) -> None:
        """An invalid record is a torn tail only if nothing follows it."""
        body_len, _ = PREFIX.unpack_from(self._buf, self.position - self._buf_start)
        if self.position + 8 + body_len < os.fstat(self._fd).st_size:
            raise CorruptLogError(
                f"{segment_path(self.folder, self.segment)} holds an invalid record at "
                f"position {self.position} followed by more data"
            )
