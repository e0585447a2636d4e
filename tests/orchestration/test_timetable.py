"""The exchange-session timetable: a run after each XNYS close, none on holidays.

Airflow is imported inside the tests, once the session's Airflow configuration is in place.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from marketlake.airflow.timetable import ExchangeSessionTimetable


@pytest.fixture
def timetable() -> ExchangeSessionTimetable:
    from marketlake.airflow.timetable import ExchangeSessionTimetable

    return ExchangeSessionTimetable()


def sessions_closed_in(calendar: str, start: datetime, end: datetime) -> tuple[date, date] | None:
    from marketlake.airflow.timetable import sessions_closed_in as closed_in

    return closed_in(calendar, start, end)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _schedule(timetable: ExchangeSessionTimetable, earliest: datetime, count: int) -> list:
    from airflow.timetables.base import TimeRestriction

    restriction = TimeRestriction(earliest=earliest, latest=None, catchup=True)
    runs, last = [], None
    for _ in range(count):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction
        )
        assert info is not None
        runs.append(info)
        last = info.data_interval
    return runs


def test_one_run_after_each_close_skipping_the_holiday(
    timetable: ExchangeSessionTimetable,
) -> None:
    runs = _schedule(timetable, _at("2024-07-02T00:00:00"), 3)
    # 3 July closes early (13:00 New York), 4 July is a holiday, 5 July closes at 16:00
    assert [(r.data_interval.start, r.data_interval.end, r.run_after) for r in runs] == [
        (_at("2024-07-01T20:00:00"), _at("2024-07-02T20:00:00"), _at("2024-07-02T20:00:00")),
        (_at("2024-07-02T20:00:00"), _at("2024-07-03T17:00:00"), _at("2024-07-03T17:00:00")),
        (_at("2024-07-03T17:00:00"), _at("2024-07-05T20:00:00"), _at("2024-07-05T20:00:00")),
    ]
    # each interval holds exactly its session: one idempotent run per interval in a backfill
    assert [
        sessions_closed_in("XNYS", r.data_interval.start, r.data_interval.end) for r in runs
    ] == [
        (date(2024, 7, 2), date(2024, 7, 2)),
        (date(2024, 7, 3), date(2024, 7, 3)),
        (date(2024, 7, 5), date(2024, 7, 5)),
    ]


@pytest.mark.parametrize(
    ("day", "session"),
    [
        ("2024-06-28", date(2024, 6, 28)),
        ("2024-06-29", date(2024, 6, 28)),
        ("2024-07-04", date(2024, 7, 3)),
    ],
)
def test_a_manual_run_for_a_date_covers_its_session_or_the_last_before(
    day: str, session: date, timetable: ExchangeSessionTimetable
) -> None:
    interval = timetable.infer_manual_data_interval(run_after=_at(day + "T00:00:00"))
    assert sessions_closed_in("XNYS", interval.start, interval.end) == (session, session)


def test_a_wider_interval_maps_to_its_first_and_last_session() -> None:
    assert sessions_closed_in("XNYS", _at("2024-06-28T21:00:00"), _at("2024-07-06T00:00:00")) == (
        date(2024, 7, 1),
        date(2024, 7, 5),
    )
    assert (
        sessions_closed_in("XNYS", _at("2024-07-04T00:00:00"), _at("2024-07-05T12:00:00")) is None
    )


def test_without_catchup_the_first_run_is_the_last_closed_session(
    timetable: ExchangeSessionTimetable,
) -> None:
    from airflow.timetables.base import TimeRestriction

    info = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(
            earliest=_at("2024-01-02T00:00:00"), latest=None, catchup=False
        ),
    )
    assert info is not None
    assert info.data_interval.end <= datetime.now(UTC)
    after = timetable.next_dagrun_info(
        last_automated_data_interval=info.data_interval,
        restriction=TimeRestriction(
            earliest=_at("2024-01-02T00:00:00"), latest=None, catchup=False
        ),
    )
    assert after is None or after.data_interval.end > datetime.now(UTC)


def test_no_run_past_the_end_date(timetable: ExchangeSessionTimetable) -> None:
    from airflow.timetables.base import TimeRestriction

    restriction = TimeRestriction(
        earliest=_at("2024-07-02T00:00:00"), latest=_at("2024-07-03T00:00:00"), catchup=True
    )
    first = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert first is not None
    assert (
        timetable.next_dagrun_info(
            last_automated_data_interval=first.data_interval, restriction=restriction
        )
        is None
    )


def test_the_timetable_is_stored_and_read_back(timetable: ExchangeSessionTimetable) -> None:
    london = type(timetable)("XLON")
    assert type(timetable).deserialize(london.serialize()) == london != timetable
    assert london.summary == "after each XLON close"
