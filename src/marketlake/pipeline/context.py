"""What every stage of a run shares: settings, the resolved range and the open components."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from marketlake.calendar import SessionTable, get_sessions
from marketlake.settings import Settings

if TYPE_CHECKING:
    from marketlake.bus.base import Bus
    from marketlake.lake.storage import LakeStorage
    from marketlake.lake.tables import LakeTables
    from marketlake.warehouse.base import Warehouse

WIDE_START = date(1900, 1, 1)
WIDE_END = date(2100, 12, 31)
FILE_SOURCES = ("csv", "parquet")

ProgressCallback = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


@dataclass
class RunContext:
    """The settings of one run and the components its stages share, opened on first use."""

    settings: Settings
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    progress: ProgressCallback = _no_progress
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    symbols_explicit: bool = False
    _components: dict[str, Any] = field(default_factory=dict)

    @property
    def calendar(self) -> SessionTable:
        """The exchange session table."""
        return get_sessions(self.settings.calendar)

    @property
    def symbols(self) -> list[str]:
        """The symbols of the run (for file sources without --symbols: those in the files)."""
        if "symbols" not in self._components:
            chosen: list[str] = list(self.settings.symbols)
            if self.settings.source in FILE_SOURCES and not self.symbols_explicit:
                found = self.source.available_symbols()
                chosen = list(found) if found is not None else chosen
            self._components["symbols"] = chosen
        return list(self._components["symbols"])

    @property
    def date_range(self) -> tuple[date, date]:
        """The requested [start, end]: explicit, else one year up to the last closed session.

        File sources read everything they hold when no dates are given.
        """
        start, end = self.settings.start, self.settings.end
        if self.settings.source in FILE_SOURCES:
            return start or WIDE_START, end or WIDE_END
        if end is None:
            end = self.calendar.last_session_before(self.now)
        if start is None:
            start = end - timedelta(days=365) + timedelta(days=1)
        return start, end

    @property
    def session_range(self) -> tuple[date, date]:
        """The requested range clamped to the dates the calendar knows."""
        start, end = self.date_range
        cal = self.calendar
        return max(start, cal.first), min(end, cal.last)

    @property
    def source(self) -> Any:
        """The history source, opened."""
        if "source" not in self._components:
            from marketlake.sources.registry import create_history_source

            src = create_history_source(self.settings)
            src.open()
            self._components["source"] = src
        return self._components["source"]

    @property
    def bus(self) -> Bus:
        """The message bus."""
        if "bus" not in self._components:
            from marketlake.bus.registry import open_bus

            self._components["bus"] = open_bus(self.settings.bus_url)
        bus: Bus = self._components["bus"]
        return bus

    @property
    def storage(self) -> LakeStorage:
        """The lake storage root."""
        if "storage" not in self._components:
            from marketlake.lake.storage import LakeStorage

            self._components["storage"] = LakeStorage.from_url(
                self.settings.lake_url, self.settings.lake_options() or None
            )
        storage: LakeStorage = self._components["storage"]
        return storage

    @property
    def tables(self) -> LakeTables:
        """The lake's Delta tables."""
        if "tables" not in self._components:
            from marketlake.lake.tables import LakeTables

            self._components["tables"] = LakeTables(self.storage)
        tables: LakeTables = self._components["tables"]
        return tables

    @property
    def warehouse(self) -> Warehouse:
        """The SQL warehouse, with its tables created."""
        if "warehouse" not in self._components:
            from marketlake.warehouse.registry import open_warehouse

            self.settings.home.mkdir(parents=True, exist_ok=True)
            wh = open_warehouse(self.settings.warehouse_url)
            wh.ensure_tables()
            self._components["warehouse"] = wh
        warehouse: Warehouse = self._components["warehouse"]
        return warehouse

    def close(self) -> None:
        """Close every component that was opened."""
        for name in ("source", "bus", "warehouse"):
            component = self._components.pop(name, None)
            if component is not None:
                component.close()
