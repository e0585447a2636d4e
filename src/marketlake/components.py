"""Open each configured component one way: lake, bus, warehouse, history source, engine.

The runner, ``doctor`` and every command open components through these functions, which read
the settings and go through each family's registry (adapters are imported only when named).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from marketlake.bus.base import Bus
    from marketlake.calendar import SessionTable
    from marketlake.engines.base import Engine
    from marketlake.lake.storage import LakeStorage
    from marketlake.lake.tables import LakeTables
    from marketlake.settings import Settings
    from marketlake.sources.base import HistorySource
    from marketlake.warehouse.base import Warehouse


def open_lake(settings: Settings) -> LakeStorage:
    """The lake root of ``settings``, with the ``[s3]`` options for an s3:// lake.

    Options not set in ``[s3]`` fall back to the AWS_* environment variables.
    """
    from marketlake.lake.storage import LakeStorage

    return LakeStorage.from_url(settings.lake_url, settings.lake_options() or None)


def open_bus(settings: Settings) -> Bus:
    """The message bus of ``settings`` (``local`` is the durable log under the home)."""
    from marketlake.bus.registry import open_bus as open_bus_url

    return open_bus_url(settings.bus_url)


def open_warehouse(settings: Settings, read_only: bool = False) -> Warehouse:
    """The warehouse of ``settings``; opened for writing, its tables are created."""
    from marketlake.warehouse.registry import open_warehouse as open_warehouse_url

    if not read_only:
        settings.home.mkdir(parents=True, exist_ok=True)
    warehouse = open_warehouse_url(settings.warehouse_url, read_only=read_only)
    if not read_only:
        warehouse.ensure_tables()
    return warehouse


def open_warehouse_soon(settings: Settings) -> Future[Warehouse]:
    """Start opening the warehouse of ``settings`` for writing on a background thread.

    Importing the driver, connecting and creating the tables take a short run a good part of
    its start; the caller plans the run meanwhile and hands the future to
    :class:`Components`, whose first use of the warehouse waits for it. A future nobody
    uses must be given to :func:`discard_warehouse`.
    """
    future: Future[Warehouse] = Future()

    def work() -> None:
        future.set_running_or_notify_cancel()
        try:
            future.set_result(open_warehouse(settings))
        except BaseException as exc:  # handed to whoever waits for the warehouse
            future.set_exception(exc)

    threading.Thread(target=work, name="marketlake-warehouse-open", daemon=True).start()
    return future


def discard_warehouse(future: Future[Warehouse]) -> None:
    """Wait for a warehouse :func:`open_warehouse_soon` is opening and close it (unused)."""
    if future.exception() is None:
        future.result().close()


def open_history_source(settings: Settings) -> HistorySource:
    """The history source named by ``settings.source``, opened."""
    from marketlake.sources.registry import create_history_source

    source = create_history_source(settings)
    source.open()
    return source


def open_engine(settings: Settings) -> Engine:
    """The batch analytics engine named by ``settings.engine``."""
    from marketlake.engines.registry import create_engine

    return create_engine(settings.engine, settings)


class Components:
    """The components ``settings`` configure, each opened on first use, closed together."""

    def __init__(
        self,
        settings: Settings,
        *,
        source: HistorySource | None = None,
        warehouse: Future[Warehouse] | None = None,
    ) -> None:
        self.settings = settings
        self._opened: dict[str, Any] = {}
        if source is not None:  # already opened for these settings (e.g. to plan a run)
            self._opened["source"] = source
        self._opening = warehouse  # being opened (open_warehouse_soon) for these settings

    def _get(self, name: str, opener: Callable[[], Any]) -> Any:
        if name not in self._opened:
            self._opened[name] = opener()
        return self._opened[name]

    def _open_warehouse(self) -> Warehouse:
        opening, self._opening = self._opening, None
        return opening.result() if opening is not None else open_warehouse(self.settings)

    @property
    def calendar(self) -> SessionTable:
        """The exchange session table."""
        from marketlake.calendar import get_sessions

        return get_sessions(self.settings.calendar)

    @property
    def source(self) -> HistorySource:
        """The history source, opened."""
        source: HistorySource = self._get("source", lambda: open_history_source(self.settings))
        return source

    @property
    def bus(self) -> Bus:
        """The message bus."""
        bus: Bus = self._get("bus", lambda: open_bus(self.settings))
        return bus

    @property
    def storage(self) -> LakeStorage:
        """The lake storage root."""
        storage: LakeStorage = self._get("storage", lambda: open_lake(self.settings))
        return storage

    @property
    def tables(self) -> LakeTables:
        """The lake's Delta tables."""
        from marketlake.lake.tables import LakeTables

        tables: LakeTables = self._get("tables", lambda: LakeTables(self.storage))
        return tables

    @property
    def warehouse(self) -> Warehouse:
        """The SQL warehouse, with its tables created."""
        warehouse: Warehouse = self._get("warehouse", self._open_warehouse)
        return warehouse

    def __enter__(self) -> Components:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every component that was opened (or is being opened)."""
        if self._opening is not None:
            opening, self._opening = self._opening, None
            discard_warehouse(opening)
        for name in ("source", "bus", "warehouse"):
            component = self._opened.pop(name, None)
            if component is not None:
                component.close()
