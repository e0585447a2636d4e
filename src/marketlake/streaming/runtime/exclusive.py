"""One running stream processor per consumer group and lake.

The processor keeps one checkpoint per group in the lake, and it reads the bus as the group's
sole consumer (:meth:`~marketlake.bus.base.Bus.sole_consumer`: on Kafka it is assigned every
partition instead of joining the group), so a second processor of the group on the same lake
would read every tick again. While it runs, a processor holds an exclusive ``flock`` on
``_stream/<group>/processor.lock`` in a lake on local disk; the system releases it when the
process ends, however it ends (SIGKILL included), so a restarted processor takes it at once. A
second processor fails at once, naming the one that holds it. A lake on object storage has no
such lock: the processor then joins its consumer group, which keeps a second one off its
partitions (at the price of the broker's join and of a dead member's session).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING

from marketlake.errors import ConfigError

if TYPE_CHECKING:
    from marketlake.lake.storage import LakeStorage


def lock_relpath(group: str) -> str:
    """Where, in the lake, the processor of ``group`` holds its lock."""
    return f"_stream/{group}/processor.lock"


class ProcessorLock:
    """The lock a processor of ``group`` holds on ``storage`` while it runs (a context
    manager; does nothing on a lake that is not on local disk)."""

    def __init__(self, storage: LakeStorage, group: str) -> None:
        self.group = group
        self.path = Path(storage.path(lock_relpath(group))) if storage.is_local else None
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise ConfigError when another processor holds it."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ConfigError(
                f"another stream processor of group {self.group!r} is running on this lake "
                f"(pid {holder}, lock {self.path}): one processor per group; stop it or "
                "choose another --group"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    @property
    def held(self) -> bool:
        """True while this lock is held (never on a lake without the lock)."""
        return self._fd is not None

    def release(self) -> None:
        """Let the next processor of the group run."""
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None

    def __enter__(self) -> ProcessorLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
