"""The live feed: 1-minute bars, stream windows and alerts as they land, as Server-Sent Events.

One poller per server reads what is new in the warehouse about once a second while anyone
listens, and hands each event to every listener's queue, so a hundred listeners cost one
read. A bar is sent again whenever it changes (the current minute grows); a window whenever
it is updated; an alert once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from marketlake.errors import MarketlakeError
from marketlake.serve.reader import WarehouseReader
from marketlake.serve.responses import json_value

QUEUE_SIZE = 1000  # events a slow listener may fall behind before it misses the oldest
KEEPALIVE_S = 15.0
_BAR_LOOKBACK = timedelta(minutes=5)  # bars this far behind the newest may still change
_ALERT_LOOKBACK = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Event:
    """One event of the feed: its kind (bar, window, alert) and the row."""

    kind: str
    symbol: str
    row: dict[str, Any]

    def encode(self) -> bytes:
        """The event in the text/event-stream format."""
        return f"event: {self.kind}\ndata: {json.dumps(self.row, allow_nan=False)}\n\n".encode()


@dataclass
class _Seen:
    """What the poller has sent already."""

    bars: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    windows: datetime | None = None
    window_keys: set[tuple[Any, ...]] = field(default_factory=set)
    alerts: set[tuple[Any, ...]] = field(default_factory=set)
    newest_bar: datetime | None = None
    newest_alert: datetime | None = None
    primed: bool = False


class LiveFeed:
    """Polls the warehouse while anyone listens and fans events out to the listeners."""

    def __init__(self, reader: WarehouseReader, interval_s: float = 1.0) -> None:
        self.reader = reader
        self.interval_s = interval_s
        self.listeners: set[asyncio.Queue[Event]] = set()
        self._task: asyncio.Task[None] | None = None
        self._seen = _Seen()

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[Event]]:
        """A queue that receives every event from now on, until the block ends."""
        queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self.listeners.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll_forever())
        try:
            yield queue
        finally:
            self.listeners.discard(queue)

    async def stop(self) -> None:
        """Stop polling (when the server shuts down)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll_forever(self) -> None:
        while self.listeners:
            try:
                events = await anyio.to_thread.run_sync(self._poll)
            except MarketlakeError:  # the warehouse is missing or busy: try again later
                events = []
            for event in events:
                for queue in list(self.listeners):
                    if queue.full():
                        queue.get_nowait()
                    queue.put_nowait(event)
            await asyncio.sleep(self.interval_s)

    def _poll(self) -> list[Event]:
        """What landed since the last poll (nothing on the first, which notes where the
        tables end: listeners load history through the API)."""
        seen = self._seen
        with self.reader.open() as warehouse:
            if not seen.primed:
                ends = warehouse.query(
                    "SELECT (SELECT max(ts) FROM bars_1m) AS bar, "
                    "(SELECT max(updated_at) FROM stream_windows) AS window_update, "
                    "(SELECT max(ts) FROM stream_alerts) AS alert"
                ).to_pylist()[0]
                seen.newest_bar, seen.windows = ends["bar"], ends["window_update"]
                seen.newest_alert = ends["alert"]
            bars = warehouse.query(
                "SELECT * FROM bars_1m WHERE ts >= ? ORDER BY ts, symbol",
                [seen.newest_bar - _BAR_LOOKBACK if seen.newest_bar else _EPOCH],
            ).to_pylist()
            windows = warehouse.query(
                "SELECT * FROM stream_windows WHERE updated_at >= ? ORDER BY updated_at",
                [seen.windows or _EPOCH],
            ).to_pylist()
            alerts = warehouse.query(
                "SELECT * FROM stream_alerts WHERE ts >= ? ORDER BY ts",
                [seen.newest_alert - _ALERT_LOOKBACK if seen.newest_alert else _EPOCH],
            ).to_pylist()
        events = [*self._new_bars(bars), *self._new_windows(windows), *self._new_alerts(alerts)]
        primed, seen.primed = seen.primed, True
        return events if primed else []

    def _new_bars(self, rows: list[dict[str, Any]]) -> list[Event]:
        seen, events = self._seen, []
        for row in rows:
            key = (row["symbol"], str(row["ts"]))
            values = tuple(row.values())
            if seen.bars.get(key) != values:
                seen.bars[key] = values
                events.append(Event("bar", row["symbol"], _plain(row)))
            if seen.newest_bar is None or row["ts"] > seen.newest_bar:
                seen.newest_bar = row["ts"]
        if seen.newest_bar is not None:
            cutoff = str(seen.newest_bar - _BAR_LOOKBACK)
            seen.bars = {k: v for k, v in seen.bars.items() if k[1] >= cutoff}
        return events

    def _new_windows(self, rows: list[dict[str, Any]]) -> list[Event]:
        seen, events = self._seen, []
        newest = seen.windows
        for row in rows:
            key = (row["symbol"], row["kind"], row["window_start"], row["updated_at"])
            if key in seen.window_keys:
                continue
            events.append(Event("window", row["symbol"], _plain(row)))
            seen.window_keys.add(key)
            if newest is None or row["updated_at"] > newest:
                newest = row["updated_at"]
        seen.windows = newest
        seen.window_keys = {key for key in seen.window_keys if key[3] == newest}
        return events

    def _new_alerts(self, rows: list[dict[str, Any]]) -> list[Event]:
        seen, events = self._seen, []
        for row in rows:
            key = (row["symbol"], row["kind"], row["ts"])
            if key not in seen.alerts:
                seen.alerts.add(key)
                events.append(Event("alert", row["symbol"], _plain(row)))
            if seen.newest_alert is None or row["ts"] > seen.newest_alert:
                seen.newest_alert = row["ts"]
        if seen.newest_alert is not None:
            cutoff = seen.newest_alert - _ALERT_LOOKBACK
            seen.alerts = {key for key in seen.alerts if key[2] >= cutoff}
        return events


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {name: json_value(value) for name, value in row.items()}


async def event_stream(
    feed: LiveFeed, symbols: set[str] | None, disconnected: Any
) -> AsyncIterator[bytes]:
    """The text/event-stream body for one listener (only ``symbols``' events when given)."""
    async with feed.listen() as queue:
        yield b": connected\n\n"
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                if await disconnected():
                    return
                yield b": keep-alive\n\n"
                continue
            if symbols is None or event.symbol in symbols:
                yield event.encode()
