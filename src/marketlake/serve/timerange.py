"""Inclusive time ranges of the API's ``start`` and ``end`` parameters.

A date (``2024-03-01``) means the whole day: as ``start`` its first instant, as ``end`` its
last. A date and time (``2024-03-01T14:30:00Z``, UTC when no offset is given) is that instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from marketlake.errors import ConfigError

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class TimeRange:
    """Instants from ``start`` to ``end``, both included (None: unbounded)."""

    start: datetime | None = None
    end: datetime | None = None


def parse_range(start: str | None, end: str | None) -> TimeRange:
    """The inclusive range of the ``start`` and ``end`` parameters; ConfigError when either is
    not a date or date-time, or ``start`` is after ``end``."""
    first = _instant(start, "start", end_of_day=False)
    last = _instant(end, "end", end_of_day=True)
    if first is not None and last is not None and first > last:
        raise ConfigError(f"start {start} is after end {end}: give start on or before end")
    return TimeRange(first, last)


def _instant(text: str | None, name: str, end_of_day: bool) -> datetime | None:
    if text is None or text == "":
        return None
    try:
        if _DATE.match(text):
            day = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            return day + timedelta(days=1) - _ONE_US if end_of_day else day
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ConfigError(
            f"{name}={text!r} is not a date: use YYYY-MM-DD or an ISO 8601 date-time "
            "such as 2024-03-01T14:30:00Z"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    """``value`` in ISO 8601, UTC, with a ``Z``."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
