"""Consumers of the local log: group membership, partition ownership, polling and commits."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from marketlake.bus.base import Consumer, Message
from marketlake.bus.local.groups import (
    Committed,
    Membership,
    read_committed,
    try_lock,
    write_committed,
)
from marketlake.bus.local.layout import LogLayout
from marketlake.bus.local.reader import PartitionReader
from marketlake.bus.local.segments import end_offset, start_offset, sync_folder

if TYPE_CHECKING:
    from pathlib import Path

_REBALANCE_INTERVAL_S = 0.05
_MAX_IDLE_SLEEP_S = 0.002


@dataclass
class _Owned:
    """A partition this consumer holds the lock of."""

    lock_fd: int
    reader: PartitionReader
    committed: int
    offsets_file: Path


class LocalConsumer(Consumer):
    """Reads its share of the group's partitions from the committed offsets on.

    A partition without a committed offset is read from its earliest record. ``skipped`` counts
    records that retention deleted before this consumer reached them.
    """

    def __init__(self, layout: LogLayout, group: str, topics: Sequence[str]) -> None:
        if not topics:
            raise ValueError("a consumer needs at least one topic")
        self._layout = layout
        self._folder = layout.group_folder(group)
        self._topics = list(dict.fromkeys(topics))
        self._partitions = {topic: layout.partition_count(topic) for topic in self._topics}
        self._membership = Membership(self._folder, self._topics)
        self._owned: dict[tuple[str, int], _Owned] = {}
        self._released_skips = 0
        self._next_rebalance = 0.0
        self._turn = 0
        self._rebalance()

    def __enter__(self) -> LocalConsumer:
        return self

    @property
    def skipped(self) -> int:
        """Records deleted by retention before this consumer could read them."""
        return self._released_skips + sum(own.reader.skipped for own in self._owned.values())

    @property
    def assignment(self) -> list[tuple[str, int]]:
        """The ``(topic, partition)`` pairs this consumer currently reads."""
        return sorted(self._owned)

    def poll(self, max_messages: int = 1000, timeout_s: float = 1.0) -> list[Message]:
        """Up to ``max_messages`` messages from the owned partitions: an equal share from
        each in turn, then what the shares left from any that has more.

        Equal shares keep a poll's messages to the start of every partition: a fetch
        publishes its symbols in order over all partitions, so a poll then covers one range
        of symbols, and the lake files its writer makes hold narrow ranges that later
        bucket reads can skip (draining one partition first spread every file over the
        whole alphabet)."""
        deadline = time.monotonic() + timeout_s
        sleep = 0.0005
        while True:
            now = time.monotonic()
            if now >= self._next_rebalance:
                self._rebalance()
                self._next_rebalance = now + _REBALANCE_INTERVAL_S
            owned = list(self._owned.values())
            first = self._turn % len(owned) if owned else 0
            readers = [own.reader for own in owned[first:] + owned[:first]]
            share = -(-max_messages // max(len(readers), 1))
            out: list[Message] = []
            for limit in (share, max_messages):
                fuller = []  # readers that gave all they were asked for: they may hold more
                for reader in readers:
                    wanted = min(limit, max_messages - len(out))
                    if wanted <= 0:
                        break
                    got = reader.read(wanted)
                    out += got
                    if len(got) == wanted:
                        fuller.append(reader)
                readers = fuller
            self._turn += 1
            if out:
                return out
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            time.sleep(min(sleep, remaining))
            sleep = min(sleep * 2, _MAX_IDLE_SLEEP_S)

    def commit(self) -> None:
        """Store, for every owned partition, the position after the last polled message."""
        folders: set[Path] = set()
        for own in self._owned.values():
            reader = own.reader
            if reader.offset == own.committed:
                continue
            own.offsets_file.parent.mkdir(parents=True, exist_ok=True)
            write_committed(
                own.offsets_file, Committed(reader.offset, reader.segment, reader.position)
            )
            own.committed = reader.offset
            folders.add(own.offsets_file.parent)
        for folder in folders:
            sync_folder(folder)

    def lag(self) -> int:
        """Records in every partition of the topics past the group's committed offsets,
        whichever member owns them."""
        total = 0
        for topic, count in self._partitions.items():
            for partition in range(count):
                own = self._owned.get((topic, partition))
                if own is not None:
                    committed = own.committed
                else:
                    stored = read_committed(self._offsets_file(topic, partition))
                    committed = 0 if stored is None else stored.offset
                folder = self._layout.partition_folder(topic, partition)
                total += max(end_offset(folder) - max(committed, start_offset(folder)), 0)
        return total

    def _offsets_file(self, topic: str, partition: int) -> Path:
        return self._folder / "offsets" / topic / f"{partition}.json"

    def close(self) -> None:
        """Give up the partitions and leave the group, without committing."""
        for pair in list(self._owned):
            self._release(pair)
        self._membership.close()

    def _rebalance(self) -> None:
        census = self._membership.census()
        for topic in self._topics:
            pairs = [(topic, p) for p in range(self._partitions[topic])]
            quota = math.ceil(len(pairs) / max(census[topic], 1))
            mine = [pair for pair in pairs if pair in self._owned]
            for pair in mine[quota:]:
                self._release(pair)
            held = min(len(mine), quota)
            for pair in pairs:
                if held >= quota:
                    break
                if pair not in self._owned and self._acquire(pair):
                    held += 1

    def _acquire(self, pair: tuple[str, int]) -> bool:
        topic, partition = pair
        locks = self._folder / "locks" / topic
        locks.mkdir(parents=True, exist_ok=True)
        lock_fd = try_lock(locks / f"{partition}.lock")
        if lock_fd is None:
            return False
        folder = self._layout.partition_folder(topic, partition)
        offsets_file = self._offsets_file(topic, partition)
        committed = read_committed(offsets_file)
        if committed is None:
            offset = start_offset(folder)
            reader = PartitionReader(folder, topic, partition, offset)
        else:
            offset = committed.offset
            hint = (committed.segment, committed.position)
            reader = PartitionReader(folder, topic, partition, offset, hint)
        self._owned[pair] = _Owned(lock_fd, reader, offset, offsets_file)
        return True

    def _release(self, pair: tuple[str, int]) -> None:
        own = self._owned.pop(pair)
        self._released_skips += own.reader.skipped
        own.reader.close()
        os.close(own.lock_fd)
