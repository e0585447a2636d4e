"""Per-symbol event-time watermarks.

A symbol's watermark is the largest event time seen for it minus the allowed lateness, or a
floor set when its session closed (whichever is later). Watermarks are kept per symbol, not
globally, because the bus partitions by symbol: one partition read ahead of another must not
make the other's ticks late. A symbol that stops trading is closed by
:meth:`WatermarkTracker.idle_floors` once its session has closed.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from marketlake.calendar import SessionTable

NO_WATERMARK = -(2**62)  # before any event: nothing is late


class WatermarkTracker:
    """Largest event time and session floor per symbol, in microseconds since the epoch."""

    def __init__(self, lateness_us: int) -> None:
        self.lateness_us = lateness_us
        self._max: dict[str, int] = {}
        self._floor: dict[str, int] = {}

    def watermark(self, symbol: str) -> int:
        """The watermark of ``symbol`` (``NO_WATERMARK`` when it has no ticks yet)."""
        top = self._max.get(symbol)
        base = NO_WATERMARK if top is None else top - self.lateness_us
        return max(base, self._floor.get(symbol, NO_WATERMARK))

    def observe(self, maxima: dict[str, int]) -> None:
        """Record the largest event time of each symbol in a processed batch."""
        for symbol, top in maxima.items():
            if top > self._max.get(symbol, NO_WATERMARK):
                self._max[symbol] = top

    def raise_floor(self, symbol: str, floor: int) -> None:
        """Declare every event time before ``floor`` complete for ``symbol``."""
        if floor > self._floor.get(symbol, NO_WATERMARK):
            self._floor[symbol] = floor

    def idle_floors(self, now_us: int, sessions: SessionTable) -> dict[str, int]:
        """Floors for symbols whose session has closed (plus the allowed lateness) by ``now``.

        The floor is the next session's open: no tick can have an event time between a close
        and the next open, so every window up to that instant is complete.
        """
        floors: dict[str, int] = {}
        opens = sessions.opens.astype(np.int64)
        closes = sessions.closes.astype(np.int64)
        for symbol, top in self._max.items():
            i = int(np.searchsorted(opens, top, side="right")) - 1
            if i < 0 or i + 1 >= len(opens):
                continue
            closed_at = max(int(closes[i]), top)
            if now_us >= closed_at + self.lateness_us and int(opens[i + 1]) > self.watermark(
                symbol
            ):
                floors[symbol] = int(opens[i + 1])
        return floors

    def copy(self) -> WatermarkTracker:
        """An independent tracker with the same watermarks."""
        tracker = WatermarkTracker(self.lateness_us)
        tracker._max = dict(self._max)
        tracker._floor = dict(self._floor)
        return tracker

    def symbols(self) -> list[str]:
        """Every symbol seen so far."""
        return sorted(self._max.keys() | self._floor.keys())

    def to_arrow(self) -> pa.Table:
        """The tracker's state as a table (for checkpoints)."""
        names = self.symbols()
        return pa.table(
            {
                "symbol": pa.array(names, pa.string()),
                "max_ts": pa.array([self._max.get(s) for s in names], pa.int64()),
                "floor": pa.array([self._floor.get(s) for s in names], pa.int64()),
            }
        )

    @classmethod
    def from_arrow(cls, lateness_us: int, table: pa.Table) -> WatermarkTracker:
        """Rebuild a tracker from :meth:`to_arrow`'s table."""
        tracker = cls(lateness_us)
        for row in table.to_pylist():
            if row["max_ts"] is not None:
                tracker._max[row["symbol"]] = row["max_ts"]
            if row["floor"] is not None:
                tracker._floor[row["symbol"]] = row["floor"]
        return tracker
