"""Offset ranges of the local log: partition folders read with a cursor, group offsets
written as the group's consumers write them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from marketlake.bus.base import Message, OffsetRanges
from marketlake.bus.local.groups import Committed, read_committed, write_committed
from marketlake.bus.local.reader import PartitionReader
from marketlake.bus.local.segments import end_offset, start_offset, sync_folder

if TYPE_CHECKING:
    from marketlake.bus.local.layout import LogLayout

_READ_CHUNK = 1024
_NO_HINT = -1  # a committed position without a segment hint: readers locate the offset


class LocalOffsetRanges(OffsetRanges):
    """Offset ranges of the log under ``layout``."""

    def __init__(self, layout: LogLayout) -> None:
        self._layout = layout

    def offsets(self, topic: str) -> list[tuple[int, int]]:
        """``(earliest, end)`` per partition of ``topic`` (created if it does not exist)."""
        folders = [
            self._layout.partition_folder(topic, p)
            for p in range(self._layout.partition_count(topic))
        ]
        return [(start_offset(folder), end_offset(folder)) for folder in folders]

    def read(self, topic: str, partition: int, start: int, end: int) -> Iterator[Message]:
        """The messages of ``partition`` in ``[start, end)`` (from the earliest kept on)."""
        folder = self._layout.partition_folder(topic, partition)
        reader = PartitionReader(folder, topic, partition, start)
        try:
            while reader.offset < end:
                messages = reader.read(min(_READ_CHUNK, end - reader.offset))
                if not messages:
                    return
                for message in messages:
                    if message.offset >= end:
                        return
                    yield message
        finally:
            reader.close()

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        """Store ``offsets`` as ``group``'s committed offsets (only where they move forward)."""
        folder = self._layout.group_folder(group) / "offsets" / topic
        folder.mkdir(parents=True, exist_ok=True)
        changed = False
        for partition, offset in sorted(offsets.items()):
            path = folder / f"{partition}.json"
            stored = read_committed(path)
            if stored is not None and stored.offset >= offset:
                continue
            write_committed(path, Committed(offset, _NO_HINT, 0))
            changed = True
        if changed:
            sync_folder(folder)
