from datetime import UTC, date, datetime

from marketlake.calendar import get_sessions


def test_sessions_skip_weekends_and_holidays() -> None:
    sessions = get_sessions("XNYS").sessions(date(2025, 12, 22), date(2025, 12, 29))
    # Christmas Day 2025 is a holiday, 27-28 December a weekend.
    assert sessions == [
        date(2025, 12, 22),
        date(2025, 12, 23),
        date(2025, 12, 24),
        date(2025, 12, 26),
        date(2025, 12, 29),
    ]


def test_early_close_and_cache_round_trip() -> None:
    # computed now, not kept from earlier in the session: the sessions run through today
    get_sessions.cache_clear()
    first = get_sessions("XNYS")
    get_sessions.cache_clear()
    second = get_sessions("XNYS")  # now read from the on-disk cache
    assert (first.days == second.days).all()
    opens, closes = second.open_close(date(2025, 11, 28))  # day after Thanksgiving
    assert opens == datetime(2025, 11, 28, 14, 30, tzinfo=UTC)
    assert closes == datetime(2025, 11, 28, 18, 0, tzinfo=UTC)


def test_last_session_before() -> None:
    cal = get_sessions("XNYS")
    assert cal.last_session_before(datetime(2025, 11, 27, 12, tzinfo=UTC)) == date(2025, 11, 26)
    assert cal.is_session(date(2025, 11, 26)) and not cal.is_session(date(2025, 11, 27))
