"""Reads of the warehouse for the API, through the read-only path of ``marketlake sql``.

The connection (:func:`marketlake.warehouse.registry.open_warehouse` with
``read_only=True``) is shared by the requests of a burst and closed once no request has used
it for ``idle_s`` (and reopened between requests once it is ``max_age_s`` old), so the server
does not keep the warehouse open while it is idle. Opening a DuckDB file costs tens of
milliseconds, far more than a typical query, hence the sharing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from marketlake.errors import TerminalError
from marketlake.warehouse.base import Warehouse, WarehouseNotFoundError
from marketlake.warehouse.registry import open_warehouse


class WarehouseMissingError(TerminalError):
    """There is no warehouse yet: nothing has been loaded."""


class WarehouseReader:
    """Runs read-only queries (``?`` marks parameters) on the warehouse at ``url``."""

    def __init__(self, url: str, idle_s: float = 0.5, max_age_s: float = 5.0) -> None:
        self.url = url
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._warehouse: Warehouse | None = None
        self._opened = 0.0
        self._last_used = 0.0
        self._users = 0
        self._closer: threading.Thread | None = None

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """The rows of ``sql`` as Arrow."""
        with self.open() as warehouse:
            return warehouse.query(sql, list(params) if params else None)

    @contextmanager
    def open(self) -> Iterator[Warehouse]:
        """The shared read-only connection, for one or several queries in a row."""
        with self._lock:
            now = time.monotonic()
            stale = now - self._opened > self.max_age_s or now - self._last_used > self.idle_s
            if self._warehouse is not None and self._users == 0 and stale:
                self._drop()
            if self._warehouse is None:
                self._warehouse = self._connect()
                self._opened = now
                self._start_closer()
            warehouse = self._warehouse
            self._users += 1
        failed = False
        try:
            yield warehouse
        except BaseException:
            failed = True
            raise
        finally:
            with self._lock:
                self._users -= 1
                self._last_used = time.monotonic()
                if failed and self._users == 0 and self._warehouse is warehouse:
                    self._drop()  # a connection that failed a query is not trusted again

    def close(self) -> None:
        """Close the shared connection now (it is reopened by the next read)."""
        with self._lock:
            if self._users == 0:
                self._drop()

    def _connect(self) -> Warehouse:
        try:
            return open_warehouse(self.url, read_only=True)
        except WarehouseNotFoundError as exc:
            raise WarehouseMissingError(f"{exc}: run `marketlake run` first to load it") from exc

    def _drop(self) -> None:
        if self._warehouse is not None:
            self._warehouse.close()
            self._warehouse = None

    def _start_closer(self) -> None:
        if self._closer is None or not self._closer.is_alive():
            self._closer = threading.Thread(
                target=self._close_when_idle, name="marketlake-reader-closer", daemon=True
            )
            self._closer.start()

    def _close_when_idle(self) -> None:
        while True:
            time.sleep(self.idle_s / 2)
            with self._lock:
                if self._warehouse is None:
                    return
                if self._users == 0 and time.monotonic() - self._last_used > self.idle_s:
                    self._drop()
                    return
