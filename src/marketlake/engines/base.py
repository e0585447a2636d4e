"""The engine contract: a job in, the derived datasets written to the lake, a result out.

An engine reads what it needs from the lake itself (curated bars and corporate actions of the
job's symbols, at the job's snapshot), back-adjusts them, computes the daily metrics and the
indicators, lists the missing sessions, and writes each of the
:data:`marketlake.catalogue.DERIVED` datasets, replacing the symbols' rows.

A job may carry a ``handover``: the curated rows the previous stage of the same process
committed, kept in memory. An engine that can use it takes the inputs of the symbols it holds
from there instead of reading the lake, and hands over what it writes; an engine that cannot
ignores it and reads the lake (the results are the same).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from marketlake.analytics.indicator_set import DEFAULT_INDICATORS, IndicatorSet

if TYPE_CHECKING:
    from marketlake.lake.handover import Handover
    from marketlake.lake.tables import LakeTables
    from marketlake.settings import Settings
    from marketlake.symbols import Symbol

BUCKET_ROWS = 500_000

Progress = Callable[[int, int], None]


def _no_progress(done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class ExpectedSessions:
    """The sessions a symbol is expected to trade: from its first stored bar to ``end`` (or
    its last bar, when later), or to its last bar when ``to_last_bar`` (file imports without
    an end date). ``start`` is the run's first session; bars before it count too, so a gap
    between two separate backfills is reported."""

    calendar: str
    start: date
    end: date
    to_last_bar: bool = False


@dataclass(frozen=True)
class EngineJob:
    """What to compute: the symbols, the snapshot of the curated tables, the expected sessions.

    ``bars_version``/``actions_version`` select older versions of the curated tables (``None``:
    the current one). ``expected`` of ``None`` leaves the missing sessions alone. ``handover``
    (optional) holds curated rows already in memory; ``bucket_rows`` is about how many bars an
    engine working symbol bucket by symbol bucket holds at a time (the Polars engine, which
    writes one bucket while it computes the next, takes half of it per bucket).
    ``indicators`` are the ``indicators_1d`` columns to compute (the configured set).
    ``appended`` are symbols whose derived rows in the lake stand up to their last one (they
    only gained later bars, see :mod:`marketlake.pipeline.pending`): an engine may append
    only their later rows instead of replacing them (the outputs are the same either way).
    """

    tables: LakeTables
    symbols: tuple[Symbol, ...]
    now: datetime
    expected: ExpectedSessions | None = None
    bars_version: int | None = None
    actions_version: int | None = None
    progress: Progress = _no_progress
    handover: Handover | None = None
    bucket_rows: int = BUCKET_ROWS
    indicators: IndicatorSet = DEFAULT_INDICATORS
    appended: frozenset[str] = frozenset()


@dataclass
class EngineResult:
    """What an engine did: bars read, the symbols that had bars, rows written per dataset."""

    rows_in: int = 0
    symbols: list[str] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)

    @property
    def rows_out(self) -> int:
        """Rows written across every dataset."""
        return sum(self.written.values())


class Engine(ABC):
    """A batch analytics engine."""

    name: ClassVar[str]

    @classmethod
    def from_settings(cls, settings: Settings | None) -> Engine:
        """The engine as ``settings`` configure it (engines without a section ignore them)."""
        return cls()

    @abstractmethod
    def process(self, job: EngineJob) -> EngineResult:
        """Read the job's curated data, compute and write the derived datasets."""

    def check(self) -> str:
        """Make sure the engine can run here and describe it (for ``doctor``)."""
        return "ready"

    def details(self) -> dict[str, Any]:
        """Facts of the last job worth keeping in the run record (none by default)."""
        return {}

    def close(self) -> None:
        """Release what the engine holds (a no-op unless it holds a cluster session)."""
        return None
