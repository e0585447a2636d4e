"""Planning a run: resolve its spec once from the settings, store it, load it in any process."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from marketlake.calendar import get_sessions
from marketlake.errors import ConfigError
from marketlake.runspec import RunSpec, check_run_id, spec_path, stored_url
from marketlake.symbols import parse_symbols

if TYPE_CHECKING:
    from marketlake.lake.storage import LakeStorage
    from marketlake.settings import Settings
    from marketlake.sources.base import HistorySource

WIDE_START = date(1900, 1, 1)
WIDE_END = date(2100, 12, 31)
FILE_SOURCES = ("csv", "parquet")


def new_run_id() -> str:
    """A fresh run id (12 hex digits)."""
    return uuid.uuid4().hex[:12]


def plan_run(
    settings: Settings,
    source: HistorySource,
    *,
    run_id: str | None = None,
    symbols_explicit: bool = True,
    now: datetime | None = None,
) -> RunSpec:
    """Resolve the run ``settings`` describe into a spec.

    Without dates, provider and simulated sources take one year up to the last session closed
    at ``now``; file sources take everything their files hold, and without ``--symbols`` the
    symbols found in the files.
    """
    from marketlake.engines.registry import ENGINES

    if settings.engine not in ENGINES:
        raise ConfigError(
            f"unknown analytics engine {settings.engine!r}; choose one of {', '.join(ENGINES)}"
        )
    moment = now or datetime.now(UTC)
    symbols = list(settings.symbols)
    if settings.source in FILE_SOURCES and not symbols_explicit:
        found = source.available_symbols()
        symbols = list(found) if found is not None else symbols
    if not symbols:
        raise ConfigError(_no_symbols(settings, symbols_explicit))
    start, end = resolve_range(settings, moment)
    check_range(settings, start, end, moment)
    options: dict[str, object] = {}
    if settings.source == "sim":
        options["seed"] = settings.sources.sim.seed
    if settings.source in FILE_SOURCES and settings.sources.files.path is not None:
        options["path"] = str(settings.sources.files.path.resolve())
    return RunSpec(
        run_id=check_run_id(run_id) if run_id else new_run_id(),
        created_at=moment,
        source=settings.source,
        symbols=tuple(parse_symbols(symbols)),
        start=start,
        end=end,
        requested_start=settings.start,
        requested_end=settings.end,
        bus=stored_url(settings.bus_url),
        lake=stored_url(settings.lake_url),
        warehouse=stored_url(settings.warehouse_url),
        engine=settings.engine,
        calendar=settings.calendar,
        source_options=options,
    )


def resolve_range(settings: Settings, now: datetime) -> tuple[date, date]:
    """The requested [start, end]: explicit, else one year up to the last closed session."""
    start, end = settings.start, settings.end
    if settings.source in FILE_SOURCES:
        return start or WIDE_START, end or WIDE_END
    if end is None:
        end = get_sessions(settings.calendar).last_session_before(now)
    if start is None:
        start = end - timedelta(days=365) + timedelta(days=1)
    return start, end


def _no_symbols(settings: Settings, explicit: bool) -> str:
    """Why a run has no symbols, and what to pass instead."""
    if settings.source in FILE_SOURCES and not explicit:
        where = settings.sources.files.path
        return (
            f"the {settings.source} files at {where} hold no bars, so there are no symbols to "
            "import: point --path at files with rows, or name symbols with --symbols"
        )
    return "no symbols to run: pass one or more with --symbols, e.g. --symbols AAPL,MSFT"


def check_range(settings: Settings, start: date, end: date, now: datetime) -> None:
    """ConfigError when [start, end] is reversed, holds no session of the calendar or, for a
    fetched source, no session that has closed at ``now``."""
    if start > end:
        if settings.end is None:
            raise ConfigError(
                f"--start {start} is after the last closed session, {end}: pass an earlier --start"
            )
        raise ConfigError(
            f"--start {start} is after --end {end}: pass a start on or before the end"
        )
    cal = get_sessions(settings.calendar)
    fetched = settings.source not in FILE_SOURCES  # a file may hold bars of open sessions
    try:
        closed = cal.last_session_before(now) if fetched else None
    except ValueError:
        closed = None
    if fetched and (closed is None or start > closed):
        raise _not_closed(cal.name, start, end, closed)
    lo, hi = max(start, cal.first), min(end, cal.last)
    sessions = cal.session_array(lo, hi) if lo <= hi else None
    if sessions is None or sessions.size == 0:
        if lo > hi:  # the whole range lies outside the calendar's span
            raise ConfigError(
                f"{cal.name} sessions are known from {cal.first} to {cal.last}, not from "
                f"{start} to {end}: pick dates within that span"
            )
        raise ConfigError(
            f"there is no {cal.name} session from {start} to {end}: pick dates that include "
            "a trading day"
        )
    if fetched and sessions[0].astype(object) > closed:
        raise _not_closed(cal.name, start, end, closed)


def _not_closed(calendar: str, start: date, end: date, closed: date | None) -> ConfigError:
    return ConfigError(
        f"no {calendar} session from {start} to {end} has closed yet (the last closed "
        f"session is {closed}): pick dates up to {closed}"
    )


def save_spec(storage: LakeStorage, spec: RunSpec) -> None:
    """Store ``spec`` with the run (under the lake's ``_runs/``)."""
    storage.write_bytes(spec.path(), spec.to_json().encode())


def load_spec(storage: LakeStorage, run_id: str) -> RunSpec | None:
    """The stored spec of run ``run_id``, or None when no such run was planned."""
    path = spec_path(run_id)
    if not storage.exists(path):
        return None
    return RunSpec.from_json(storage.read_bytes(path).decode())


def require_spec(storage: LakeStorage, run_id: str) -> RunSpec:
    """The stored spec of run ``run_id``; ConfigError saying how to plan it otherwise."""
    spec = load_spec(storage, run_id)
    if spec is None:
        raise ConfigError(
            f"run {run_id} is not planned in {storage.describe()}: create it with "
            "`marketlake run --plan` or by running its first stage (fetch_history)"
        )
    return spec


def check_split_stages(settings: Settings) -> None:
    """A run whose stages are separate processes needs a bus that outlives each process."""
    if settings.bus_url.startswith("memory://"):
        raise ConfigError(
            f"the bus {settings.bus_url} lives inside one process: a run whose stages run as "
            "separate processes needs the local log (--bus local) or Kafka (--bus kafka://…)"
        )
