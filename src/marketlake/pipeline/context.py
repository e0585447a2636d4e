"""What every stage of a run shares: its spec, its settings and the open components."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from datetime import date, datetime
from typing import TYPE_CHECKING

from marketlake.components import Components, discard_warehouse
from marketlake.lake.handover import Handover
from marketlake.runspec import RunSpec
from marketlake.settings import Settings
from marketlake.sources.base import HistorySource
from marketlake.symbols import Symbol

if TYPE_CHECKING:
    from marketlake.warehouse.base import Warehouse

ProgressCallback = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


class RunContext(Components):
    """One run: its spec (resolved once, the same in every process) and its components.

    ``settings`` are the process's settings with the spec's choices applied. ``handover``
    holds what a stage committed to the lake, for the next stage of this process (empty when
    a stage runs alone: it then reads the lake).
    """

    def __init__(
        self,
        settings: Settings,
        spec: RunSpec,
        progress: ProgressCallback = _no_progress,
        *,
        source: HistorySource | None = None,
        warehouse: Future[Warehouse] | None = None,
    ) -> None:
        resolved = spec.settings(settings)
        if warehouse is not None and resolved.warehouse_url != settings.warehouse_url:
            discard_warehouse(warehouse)  # opened for other settings than the run's
            warehouse = None
        super().__init__(resolved, source=source, warehouse=warehouse)
        self.spec = spec
        self.progress = progress
        self.handover = Handover(self.settings.runner.handover_rows)

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.spec.run_id

    @property
    def now(self) -> datetime:
        """The moment the run was planned (UTC); every stage dates its rows with it."""
        return self.spec.created_at

    @property
    def symbols(self) -> list[Symbol]:
        """The symbols of the run."""
        return list(self.spec.symbols)

    @property
    def date_range(self) -> tuple[date, date]:
        """The run's resolved [start, end]."""
        return self.spec.start, self.spec.end

    @property
    def session_range(self) -> tuple[date, date]:
        """The run's range clamped to the dates the calendar knows."""
        start, end = self.date_range
        cal = self.calendar
        return max(start, cal.first), min(end, cal.last)
