"""Sources chosen by name: the history and tick registries, held as data.

Each registry maps a name to a :class:`SourceSpec`: a one-line description (for help texts and
``doctor``) and the opener that builds the source from the settings. Openers import their
adapter only when called, so naming a source never loads another one's driver.
:func:`create_history_source` and :func:`create_tick_source` are the one way to open a source;
an unknown name fails with the valid names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Generic, TypeVar

from marketlake.errors import ConfigError

if TYPE_CHECKING:
    from marketlake.settings import Settings
    from marketlake.sources.base import HistorySource
    from marketlake.sources.live.base import TickSource

T = TypeVar("T")


@dataclass(frozen=True)
class SourceSpec(Generic[T]):
    """One registered source: what it is, and how to open it."""

    description: str
    opener: Callable[..., T]


@dataclass(frozen=True)
class TickRequest:
    """How a tick stream is shaped beyond the settings: pace, length, start and file.

    ``rate`` paces emission in ticks per wall second (None: as fast as possible); ``seed``
    overrides ``settings.sources.sim.seed``; ``path`` and ``speed`` are for the replay; a naive
    ``start`` is read as UTC. ``resume`` holds, per symbol, the event time and ``seq`` of the
    last tick already produced: without a ``start``, the stream continues after them.
    """

    rate: float | None = None
    count: int | None = None
    path: Path | None = None
    speed: float = 1.0
    seed: int | None = None
    start: datetime | None = None
    event_rate: float | None = None
    late_fraction: float = 0.0
    late_by: float = 60.0
    resume: Mapping[str, tuple[datetime, int]] = field(default_factory=dict)


def _open_sim(settings: Settings) -> HistorySource:
    from marketlake.sources.sim.source import SimSource

    return SimSource(seed=settings.sources.sim.seed, calendar=settings.calendar)


def _open_files(fmt: str) -> Callable[[Settings], HistorySource]:
    def open_files(settings: Settings) -> HistorySource:
        from marketlake.sources.files.source import FileSource

        path = settings.sources.files.path
        if path is None:
            raise ConfigError(
                f"source {fmt!r} reads files: pass --path FILE_OR_FOLDER "
                "(or set MARKETLAKE_SOURCES__FILES__PATH)"
            )
        return FileSource(path, fmt=fmt)

    return open_files


def _open_yahoo(settings: Settings) -> HistorySource:
    try:
        from marketlake.sources.yahoo.source import YahooSource
    except ModuleNotFoundError as exc:
        raise ConfigError(f"source 'yahoo' is not available in this installation: {exc}") from exc
    return YahooSource(settings.sources.yahoo, calendar=settings.calendar)


def _open_alphavantage(settings: Settings) -> HistorySource:
    try:
        from marketlake.sources.alphavantage.source import AlphaVantageSource
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"source 'alphavantage' is not available in this installation: {exc}"
        ) from exc
    return AlphaVantageSource(settings.sources.alphavantage, calendar=settings.calendar)


def _open_sim_ticks(settings: Settings, request: TickRequest) -> TickSource:
    from marketlake.sources.live.sim import SimTickSource, resume_start

    start = request.start
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    seq_from: dict[str, int] = {}
    done = {s: request.resume[s] for s in settings.symbols if s in request.resume}
    if start is None and done:
        start = resume_start(max(ts for ts, _ in done.values()), settings.calendar)
        seq_from = {symbol: seq for symbol, (_, seq) in done.items()}
    return SimTickSource(
        settings.symbols,
        rate_per_s=request.rate,
        seed=settings.sources.sim.seed if request.seed is None else request.seed,
        start=start,
        count=request.count,
        calendar=settings.calendar,
        event_rate_per_s=request.event_rate,
        late_fraction=request.late_fraction,
        late_by_s=request.late_by,
        seq_from=seq_from,
    )


def _open_replay(settings: Settings, request: TickRequest) -> TickSource:
    from marketlake.sources.live.replay import ReplaySource

    if request.path is None:
        raise ConfigError("the replay source needs --path FILE (1-minute bars, CSV)")
    symbols = settings.symbols
    explicit = symbols[0] if len(symbols) == 1 else None
    start = request.start
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    source = ReplaySource(request.path, request.speed, symbol=explicit, start=start)
    if start is None and source.symbol in request.resume:
        source.after = request.resume[source.symbol][0]
    return source


HISTORY_SOURCES: Mapping[str, SourceSpec[HistorySource]] = MappingProxyType(
    {
        "sim": SourceSpec("seeded simulator of daily bars on real exchange sessions", _open_sim),
        "csv": SourceSpec("daily bars from provider CSV files (--path)", _open_files("csv")),
        "parquet": SourceSpec("daily bars from Parquet files (--path)", _open_files("parquet")),
        "yahoo": SourceSpec("Yahoo Finance chart API, bars as traded", _open_yahoo),
        "alphavantage": SourceSpec("Alpha Vantage API (needs an API key)", _open_alphavantage),
    }
)

TICK_SOURCES: Mapping[str, SourceSpec[TickSource]] = MappingProxyType(
    {
        "sim": SourceSpec("seeded intraday ticks during exchange hours", _open_sim_ticks),
        "replay": SourceSpec("recorded 1-minute bars replayed as ticks (--path)", _open_replay),
    }
)


def _spec(registry: Mapping[str, SourceSpec[T]], kind: str, name: str) -> SourceSpec[T]:
    spec = registry.get(name.strip().lower())
    if spec is None:
        raise ConfigError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(registry)}")
    return spec


def create_history_source(settings: Settings) -> HistorySource:
    """The historical source named by ``settings.source``, configured from ``settings``."""
    return _spec(HISTORY_SOURCES, "source", settings.source).opener(settings)


def create_tick_source(
    name: str, settings: Settings, request: TickRequest | None = None
) -> TickSource:
    """The tick source ``name`` for ``settings.symbols``, shaped by ``request``."""
    return _spec(TICK_SOURCES, "tick source", name).opener(settings, request or TickRequest())
