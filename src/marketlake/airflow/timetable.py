"""The exchange-session timetable: one DAG run after each session close, none on holidays.

A run's data interval runs from the close of the previous session to the close of its
session, so it holds exactly one session and the run starts once that session has closed;
weekends, holidays and early closes come from the exchange calendar (``exchange_calendars``
through :func:`marketlake.calendar.get_sessions`). The calendar is read when Airflow asks
for a run, never while a DAG file is parsed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.timetables.base import DagRunInfo, DataInterval, Timetable

if TYPE_CHECKING:
    from airflow.timetables.base import TimeRestriction

    from marketlake.calendar import SessionTable


def _sessions(calendar: str) -> SessionTable:
    from marketlake.calendar import get_sessions

    return get_sessions(calendar)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _first_close_after(table: SessionTable, moment: datetime, inclusive: bool) -> int | None:
    """Index of the first session closing after ``moment`` (at it too when ``inclusive``)."""
    import numpy as np

    instant = np.datetime64(_utc(moment).replace(tzinfo=None), "us")
    i = int(np.searchsorted(table.closes, instant, side="left" if inclusive else "right"))
    return i if i < len(table.closes) else None


def _close(table: SessionTable, i: int) -> datetime:
    return table.open_close(table.days[i].astype(object))[1]


def session_interval(calendar: str, day: date) -> DataInterval:
    """The data interval of session ``day``: from the previous session's close to its own."""
    import numpy as np
    import pendulum

    table = _sessions(calendar)
    i = int(np.searchsorted(table.days, np.datetime64(day, "D")))
    end = _close(table, i)
    start = _close(table, i - 1) if i > 0 else end - timedelta(days=1)
    return DataInterval(start=pendulum.instance(start), end=pendulum.instance(end))


def session_on_or_before(calendar: str, day: date) -> date:
    """``day`` when it is a session, else the last session before it."""
    import numpy as np

    table = _sessions(calendar)
    i = int(np.searchsorted(table.days, np.datetime64(day, "D"), side="right")) - 1
    if i < 0:
        raise ValueError(f"no {calendar} session on or before {day}")
    session: date = table.days[i].astype(object)
    return session


def sessions_closed_in(calendar: str, start: datetime, end: datetime) -> tuple[date, date] | None:
    """The first and last sessions closing in ``(start, end]``; None when none does."""
    table = _sessions(calendar)
    first = _first_close_after(table, start, inclusive=False)
    if first is None or _close(table, first) > _utc(end):
        return None
    after = _first_close_after(table, end, inclusive=False)
    last = (after if after is not None else len(table.days)) - 1
    return table.days[first].astype(object), table.days[last].astype(object)


class ExchangeSessionTimetable(Timetable):
    """A run after each close of an exchange (``XNYS`` by default), skipping non-sessions."""

    def __init__(self, calendar: str = "XNYS") -> None:
        self.calendar = calendar
        self.description = f"One run after each {calendar} session close; no run on holidays."

    @property
    def summary(self) -> str:
        """Short text the Airflow UI shows as the schedule."""
        return f"after each {self.calendar} close"

    def serialize(self) -> dict[str, Any]:
        """What Airflow stores of the timetable."""
        return {"calendar": self.calendar}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> ExchangeSessionTimetable:
        """The timetable :meth:`serialize` stored."""
        return cls(data.get("calendar", "XNYS"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExchangeSessionTimetable) and other.calendar == self.calendar

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.calendar))

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        """A manual run for date D covers session D, or the last session before D."""
        return session_interval(
            self.calendar, session_on_or_before(self.calendar, run_after.date())
        )

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        """The run after the last scheduled one: the next session's interval, once it closes."""
        table = _sessions(self.calendar)
        if last_automated_data_interval is not None:
            i = _first_close_after(table, last_automated_data_interval.end, inclusive=False)
        elif restriction.earliest is None:
            return None
        elif restriction.catchup:
            i = _first_close_after(table, restriction.earliest, inclusive=True)
        else:  # the latest session that has closed, unless it closed before the start date
            now = datetime.now(UTC)
            latest = _first_close_after(table, now, inclusive=False)
            latest = (latest if latest is not None else len(table.days)) - 1
            first = _first_close_after(table, restriction.earliest, inclusive=True)
            i = first if first is None or latest < first else latest
        if i is None:
            return None
        interval = session_interval(self.calendar, table.days[i].astype(object))
        if restriction.latest is not None and interval.end > restriction.latest:
            return None
        return DagRunInfo.interval(start=interval.start, end=interval.end)
