"""The tick source contract: an adapter produces ticks with due times; the base owns pacing."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import numpy as np
import pyarrow as pa

from marketlake.errors import ConfigError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Chunk = tuple[pa.RecordBatch, np.ndarray | None]  # ticks and their due offsets in wall seconds


class TickSource(ABC):
    """Base of live tick sources: yields Tick-schema batches, in emission order.

    Subclasses implement :meth:`chunks`, producing ticks together with the wall-clock offset
    (seconds since the stream started) at which each is due, or None to emit at once. The base
    releases due ticks in batches of at most ``batch_size``, waiting at least ``linger_s``
    between batches so that paced streams still travel in batches.
    """

    name: ClassVar[str]

    def __init__(
        self,
        batch_size: int = 10_000,
        linger_s: float = 0.002,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.linger_s = linger_s
        self._clock = clock
        self._sleep = sleep

    def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire resources."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    @abstractmethod
    def chunks(self) -> Iterator[Chunk]:
        """Ticks in emission order with their due offsets (None: as fast as possible)."""

    def ticks(self) -> Iterator[pa.RecordBatch]:
        """Tick batches, released when due."""
        started = self._clock()
        last = started - self.linger_s
        for batch, due in self.chunks():
            if due is None:
                for start in range(0, batch.num_rows, self.batch_size):
                    yield batch.slice(start, self.batch_size)
                continue
            i = 0
            while i < batch.num_rows:
                wait = max(started + float(due[i]), last + self.linger_s) - self._clock()
                if wait > 0:
                    self._sleep(wait)
                elapsed = self._clock() - started
                j = int(np.searchsorted(due, elapsed, side="right"))
                j = min(max(j, i + 1), i + self.batch_size)
                last = self._clock()
                yield batch.slice(i, j - i)
                i = j

    def __enter__(self) -> TickSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def epoch_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)
