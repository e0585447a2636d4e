"""Exchange sessions from ``exchange_calendars``, cached on disk so the command path stays fast.

Building the XNYS calendar imports pandas and takes a noticeable fraction of a second; the
session table (date, open, close in UTC) is small, so it is computed once per calendar and
library version and kept as an Arrow IPC file under the cache folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

DEFAULT_CALENDAR = "XNYS"
CALENDAR_START = "1990-01-02"
_CACHE_FORMAT = 2


def cache_dir() -> Path:
    """The folder for cached calendars (``MARKETLAKE_CACHE_DIR`` or ``~/.cache/marketlake``)."""
    env = os.environ.get("MARKETLAKE_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "marketlake"


@dataclass(frozen=True)
class SessionTable:
    """Sessions of one exchange: dates plus open and close instants (UTC, microseconds)."""

    name: str
    days: np.ndarray  # datetime64[D], sorted
    opens: np.ndarray  # datetime64[us], UTC
    closes: np.ndarray  # datetime64[us], UTC

    def sessions(self, start: date, end: date) -> list[date]:
        """Session dates in ``[start, end]``, both inclusive."""
        lo, hi = self._bounds(start, end)
        return [d.astype(object) for d in self.days[lo:hi]]

    def session_array(self, start: date, end: date) -> np.ndarray:
        """Session dates in ``[start, end]`` as ``datetime64[D]``."""
        lo, hi = self._bounds(start, end)
        return self.days[lo:hi]

    def is_session(self, day: date) -> bool:
        """True when ``day`` is a trading session."""
        i = int(np.searchsorted(self.days, np.datetime64(day, "D")))
        return i < len(self.days) and self.days[i] == np.datetime64(day, "D")

    def open_close(self, day: date) -> tuple[datetime, datetime]:
        """The open and close instants (UTC) of session ``day``; KeyError if it is not one."""
        i = int(np.searchsorted(self.days, np.datetime64(day, "D")))
        if i >= len(self.days) or self.days[i] != np.datetime64(day, "D"):
            raise KeyError(f"{day} is not a {self.name} session")
        return _to_datetime(self.opens[i]), _to_datetime(self.closes[i])

    def last_session_before(self, moment: datetime) -> date:
        """The last session whose close is at or before ``moment``."""
        stamp = np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "us")
        i = int(np.searchsorted(self.closes, stamp, side="right")) - 1
        if i < 0:
            raise ValueError(f"no {self.name} session closes before {moment}")
        return self.days[i].astype(object)

    def _bounds(self, start: date, end: date) -> tuple[int, int]:
        if start < self.first or end > self.last:
            raise ValueError(
                f"{self.name} sessions are known from {self.first} to {self.last}; "
                f"asked for {start} to {end}"
            )
        lo = int(np.searchsorted(self.days, np.datetime64(start, "D"), side="left"))
        hi = int(np.searchsorted(self.days, np.datetime64(end, "D"), side="right"))
        return lo, hi

    @property
    def first(self) -> date:
        """The first session date known."""
        return self.days[0].astype(object)

    @property
    def last(self) -> date:
        """The last session date known."""
        return self.days[-1].astype(object)


def _to_datetime(value: np.datetime64) -> datetime:
    micros = int(value.astype("datetime64[us]").astype(np.int64))
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def _build(name: str) -> pa.Table:
    import warnings

    import exchange_calendars as xc

    with warnings.catch_warnings():
        # exchange_calendars itself trips a pandas deprecation that is not ours to fix.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from pandas.errors import Pandas4Warning

            warnings.simplefilter("ignore", Pandas4Warning)
        except ImportError:
            pass
        cal = xc.get_calendar(name, start=CALENDAR_START)
    schedule = cal.schedule
    return pa.table(
        {
            "day": pa.array(schedule.index.values.astype("datetime64[D]").astype(np.int64)),
            "open": pa.array(
                schedule["open"]
                .dt.tz_convert(None)
                .values.astype("datetime64[us]")
                .astype(np.int64)
            ),
            "close": pa.array(
                schedule["close"]
                .dt.tz_convert(None)
                .values.astype("datetime64[us]")
                .astype(np.int64)
            ),
        },
        metadata={"version": xc.__version__, "format": str(_CACHE_FORMAT)},
    )


def _cache_path(name: str) -> Path:
    from importlib.metadata import version

    tag = version("exchange_calendars")
    today = date.today().isoformat()  # the calendar's horizon moves with today's date
    return cache_dir() / f"calendar-{name}-{tag}-{_CACHE_FORMAT}-{today}.arrow"


@lru_cache(maxsize=4)
def get_sessions(name: str = DEFAULT_CALENDAR) -> SessionTable:
    """The session table of exchange ``name``, from the on-disk cache when possible."""
    path = _cache_path(name)
    table: pa.Table | None = None
    if path.exists():
        try:
            with pa.memory_map(str(path)) as source:
                table = ipc.open_file(source).read_all()
        except (OSError, pa.ArrowInvalid):
            table = None
    if table is None:
        table = _build(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            with ipc.new_file(str(tmp), table.schema) as writer:
                writer.write_table(table)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache folder only costs speed
    return SessionTable(
        name=name,
        days=table.column("day").to_numpy().astype("datetime64[D]"),
        opens=table.column("open").to_numpy().astype("datetime64[us]"),
        closes=table.column("close").to_numpy().astype("datetime64[us]"),
    )
