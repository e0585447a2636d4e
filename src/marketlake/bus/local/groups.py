"""Consumer groups of the local log: live members, partition ownership and committed offsets.

Each consumer registers a member file it holds an ``flock`` on; a member file that can be locked
by someone else belongs to a dead process and is removed. A consumer owns a partition while it
holds the ``flock`` of the partition's lock file, so a partition whose owner dies is free again.
Committed offsets are small JSON files replaced atomically.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from marketlake.bus.local.segments import write_all


class Committed(NamedTuple):
    """A committed position: the next offset to read and where its record starts, if known."""

    offset: int
    segment: int
    position: int


class Membership:
    """This consumer's registration in a group, and the census of live members."""

    def __init__(self, folder: Path, topics: Sequence[str]) -> None:
        self._folder = folder / "members"
        self._folder.mkdir(parents=True, exist_ok=True)
        self.topics = tuple(topics)
        name = uuid.uuid4().hex
        joining = self._folder / f"{name}.joining"
        self._path = self._folder / f"{name}.member"
        self._fd = os.open(joining, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        write_all(self._fd, json.dumps(list(self.topics)).encode())
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.rename(joining, self._path)

    def census(self) -> dict[str, int]:
        """How many live members subscribe to each topic, this one included."""
        counts = dict.fromkeys(self.topics, 0)
        for name in os.listdir(self._folder):
            if not name.endswith(".member"):
                continue
            path = self._folder / name
            topics = self.topics if path == self._path else _live_member_topics(path)
            for topic in topics:
                if topic in counts:
                    counts[topic] += 1
        return counts

    def close(self) -> None:
        """Leave the group."""
        if self._fd >= 0:
            self._path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = -1


def _live_member_topics(path: Path) -> Sequence[str]:
    """The topics of the member at ``path``; a dead member's file is removed and counts for none."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return ()
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return tuple(json.loads(os.pread(fd, 1 << 16, 0)))
        path.unlink(missing_ok=True)
        return ()
    finally:
        os.close(fd)


def try_lock(path: Path) -> int | None:
    """A descriptor holding an exclusive ``flock`` on ``path``; None if another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def read_committed(path: Path) -> Committed | None:
    """The committed position stored at ``path``, if any."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    return Committed(int(data["offset"]), int(data["segment"]), int(data["position"]))


def write_committed(path: Path, committed: Committed) -> None:
    """Store ``committed`` at ``path`` atomically (temp file, fsync, rename)."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        write_all(fd, json.dumps(committed._asdict()).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
