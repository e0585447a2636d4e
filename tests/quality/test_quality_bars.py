"""Row rules, duplicates and the missing-session report of validate_bars, on hand-made bars."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pytest

from marketlake.quality.bars import BAR_RULES, validate_bars
from marketlake.schemas import BAR_SCHEMA, QUARANTINE_SCHEMA
from tests.quality.factories import NOW, action_table, bar_table, day, flat

# Mon 2024-01-08 .. Fri 2024-01-12, Tue 2024-01-16 (Mon 15th is Martin Luther King Day)
WEEK = ["2024-01-08", "2024-01-09", "2024-01-10", "2024-01-11", "2024-01-12", "2024-01-16"]
SESSIONS = np.array(WEEK, dtype="datetime64[D]")
NO_ACTIONS = action_table([])


def check(rows, **kwargs):
    kwargs.setdefault("sessions", SESSIONS)
    return validate_bars(bar_table(rows), NO_ACTIONS, now=NOW, **kwargs)


def rules_of(result) -> list[tuple[str, str]]:
    return list(
        zip(
            result.rejects.column("rule").to_pylist(),
            [t.date().isoformat() for t in result.rejects.column("ts").to_pylist()],
            strict=True,
        )
    )


def test_clean_bars_pass_sorted_and_unchanged() -> None:
    rows = flat("MSFT", WEEK[::-1]) + flat("AAPL", WEEK)
    result = check(rows)
    assert result.rejects.num_rows == 0
    assert result.bars.schema == BAR_SCHEMA
    assert result.bars.num_rows == 12
    keys = list(zip(result.bars["symbol"].to_pylist(), result.bars["ts"].to_pylist(), strict=True))
    assert keys == sorted(keys)
    assert result.counts == dict.fromkeys(BAR_RULES, 0)
    assert result.missing.num_rows == 0


@pytest.mark.parametrize(
    ("bad", "expected_detail"),
    [
        ((None, 11.0, 9.0, 10.0, 100.0), "open is null"),
        ((10.0, 11.0, 9.0, float("nan"), 100.0), "close is NaN"),
        ((10.0, float("inf"), 9.0, 10.0, 100.0), "high is inf"),
        ((10.0, 11.0, 9.0, 10.0, None), "volume is null"),
    ],
)
def test_null_value(bad, expected_detail) -> None:
    rows = [*flat("AAPL", WEEK[:2]), ("AAPL", WEEK[2], *bad)]
    result = check(rows)
    assert rules_of(result) == [("null_value", WEEK[2])]
    assert result.rejects["detail"][0].as_py() == expected_detail
    assert result.bars.num_rows == 2


def test_non_positive_price_and_negative_volume_are_both_reported() -> None:
    rows = [*flat("AAPL", WEEK[:2]), ("AAPL", WEEK[2], 10.0, 11.0, 0.0, 10.0, -5.0)]
    result = check(rows)
    assert rules_of(result) == [("non_positive_price", WEEK[2]), ("negative_volume", WEEK[2])]
    assert result.rejects["detail"].to_pylist() == ["low 0.0 <= 0", "volume -5.0 < 0"]
    assert result.counts["non_positive_price"] == 1
    assert result.counts["negative_volume"] == 1


@pytest.mark.parametrize(
    ("ohlc", "detail"),
    [
        ((10.2, 11.0, 10.5, 10.8), "low 10.5 > open 10.2"),
        ((10.0, 11.0, 9.0, 11.5), "high 11.0 < close 11.5"),
        (
            (10.0, 9.0, 9.5, 9.2),
            "low 9.5 > close 9.2, high 9.0 < open 10.0, high 9.0 < close 9.2, low 9.5 > high 9.0",
        ),
    ],
)
def test_ohlc_invariant(ohlc, detail) -> None:
    result = check([("AAPL", WEEK[0], *ohlc, 100.0)])
    assert rules_of(result) == [("ohlc_invariant", WEEK[0])]
    assert result.rejects["detail"][0].as_py() == detail
    assert result.bars.num_rows == 0


def test_not_a_session_weekend_holiday_and_intraday_stamp() -> None:
    rows = [
        *flat("AAPL", WEEK),
        *flat("AAPL", ["2024-01-13", "2024-01-15"]),  # a Saturday, a holiday
        *flat("AAPL", ["2024-01-17T14:30:00"]),  # not midnight
    ]
    result = check(rows)
    assert [r for r, _ in rules_of(result)] == ["not_a_session"] * 3
    assert result.rejects["detail"].to_pylist() == [
        "2024-01-13 is not an exchange session",
        "2024-01-15 is not an exchange session",
        "ts 2024-01-17T14:30:00+00:00 is not midnight UTC",
    ]
    assert result.bars.num_rows == 6


def test_without_sessions_only_midnight_is_checked_and_nothing_is_missing() -> None:
    rows = [*flat("AAPL", ["2024-01-13", "2024-01-16"]), *flat("AAPL", ["2024-01-17T01:00:00"])]
    result = check(rows, sessions=None)
    assert rules_of(result) == [("not_a_session", "2024-01-17")]
    assert result.bars.num_rows == 2
    assert result.missing.num_rows == 0


def test_duplicates_keep_the_first_and_say_whether_values_differ() -> None:
    first = ("AAPL", WEEK[1], 10.0, 11.0, 9.0, 10.5, 100.0)
    same = first
    different = ("AAPL", WEEK[1], 10.0, 11.0, 9.0, 10.7, 100.0)
    rows = [*flat("AAPL", [WEEK[0]]), first, same, different]
    result = check(rows)
    assert rules_of(result) == [("duplicate", WEEK[1]), ("duplicate", WEEK[1])]
    details = result.rejects["detail"].to_pylist()
    assert details[0].endswith("identical values")
    assert details[1].endswith("values differ: close 10.7 vs kept 10.5")
    kept = result.bars.filter(pa.compute.equal(result.bars["ts"], pa.scalar(day(WEEK[1]))))
    assert kept["close"].to_pylist() == [10.5]
    assert result.counts["duplicate"] == 2


def test_a_bad_first_copy_leaves_the_good_second_copy_as_the_bar() -> None:
    rows = [("AAPL", WEEK[0], 10.0, 9.0, 11.0, 10.0, 1.0), *flat("AAPL", [WEEK[0]])]
    result = check(rows)
    assert rules_of(result) == [("ohlc_invariant", WEEK[0])]
    assert result.bars.num_rows == 1


def test_quarantine_rows_follow_the_contract() -> None:
    rows = [("AAPL", WEEK[0], 10.2, 11.0, 10.5, 10.8, 100.0)]
    result = check(rows)
    rejects = result.rejects
    assert rejects.schema == QUARANTINE_SCHEMA
    row = rejects.to_pylist()[0]
    expected_record = {
        "close": 10.8,
        "high": 11.0,
        "ingested_at": NOW.isoformat(),
        "low": 10.5,
        "open": 10.2,
        "source": "test",
        "symbol": "AAPL",
        "ts": "2024-01-08T00:00:00+00:00",
        "volume": 100.0,
    }
    assert json.loads(row["record"]) == expected_record
    assert row["record"] == json.dumps(expected_record, sort_keys=True, separators=(",", ":"))
    identity = json.dumps(
        {k: v for k, v in expected_record.items() if k != "ingested_at"},
        sort_keys=True,
        separators=(",", ":"),
    )
    assert row["record_id"] == hashlib.sha1(f"bars_1d\n{identity}".encode()).hexdigest()
    assert row["dataset"] == "bars_1d"
    assert (row["symbol"], row["ts"], row["source"]) == ("AAPL", day(WEEK[0]), "test")
    assert row["quarantined_at"] == NOW


def test_nan_in_a_record_is_valid_json() -> None:
    result = check([("AAPL", WEEK[0], 10.0, 11.0, 9.0, float("nan"), 1.0)])
    assert json.loads(result.rejects["record"][0].as_py())["close"] == "NaN"


def test_identical_batches_give_identical_record_ids() -> None:
    rows = [("AAPL", WEEK[0], 10.2, 11.0, 10.5, 10.8, 100.0)]
    assert check(rows).rejects["record_id"] == check(rows).rejects["record_id"]


def test_a_bad_row_fetched_again_keeps_its_record_id() -> None:
    """Only ``ingested_at`` differs between two fetches of the same bad row: one record."""
    rows = [("AAPL", WEEK[0], 10.2, 11.0, 10.5, 10.8, 100.0)]
    first = bar_table(rows)
    again = first.set_column(
        first.schema.get_field_index("ingested_at"),
        "ingested_at",
        pa.array([datetime(2025, 6, 1, tzinfo=UTC)], first.schema.field("ingested_at").type),
    )
    ids = [
        validate_bars(t, NO_ACTIONS, sessions=SESSIONS, now=NOW).rejects["record_id"]
        for t in (first, again)
    ]
    assert ids[0] == ids[1]
    assert len(ids[0]) == 1


def test_missing_sessions_between_first_and_last_bar_of_each_symbol() -> None:
    rows = [
        *flat("AAPL", [WEEK[0], WEEK[3], WEEK[5]]),
        ("AAPL", WEEK[4], 10.0, 9.0, 11.0, 10.0, 1.0),  # rejected: its session is missing
        *flat("MSFT", WEEK[1:3]),
    ]
    result = check(rows)
    missing = list(
        zip(result.missing["symbol"].to_pylist(), result.missing["ts"].to_pylist(), strict=True)
    )
    assert missing == [("AAPL", day(WEEK[1])), ("AAPL", day(WEEK[2])), ("AAPL", day(WEEK[4]))]
    assert result.missing.schema.field("ts").type == BAR_SCHEMA.field("ts").type


def test_without_find_missing_sessions_still_reject_off_calendar_rows() -> None:
    rows = [*flat("AAPL", [WEEK[0], WEEK[3]]), ("AAPL", "2024-01-13", 10.0, 11.0, 9.0, 10.0, 1.0)]
    found = check(rows)
    result = check(rows, find_missing=False)
    assert result.missing.num_rows == 0 and found.missing.num_rows == 2
    assert result.counts == found.counts and result.counts["not_a_session"] == 1
    assert result.bars.equals(found.bars) and result.rejects.equals(found.rejects)


def test_missing_sessions_over_a_requested_range() -> None:
    result = check(flat("AAPL", WEEK[2:4]), requested=(date(2024, 1, 8), date(2024, 1, 16)))
    assert [t.date().isoformat() for t in result.missing["ts"].to_pylist()] == [
        WEEK[0],
        WEEK[1],
        WEEK[4],
        WEEK[5],
    ]


def test_empty_batch() -> None:
    result = check([])
    assert result.bars.num_rows == 0
    assert result.rejects.num_rows == 0
    assert result.missing.num_rows == 0
    assert result.counts == dict.fromkeys(BAR_RULES, 0)


def test_requested_range_covers_symbols_whose_rows_are_all_rejected() -> None:
    rows = [*flat("AAPL", WEEK[:2]), ("MSFT", WEEK[0], 10.0, 9.0, 11.0, 10.0, 1.0)]
    result = check(rows, requested=(date(2024, 1, 8), date(2024, 1, 9)))
    missing = list(
        zip(result.missing["symbol"].to_pylist(), result.missing["ts"].to_pylist(), strict=True)
    )
    assert missing == [("MSFT", day(WEEK[0])), ("MSFT", day(WEEK[1]))]


def test_a_row_with_nan_is_not_also_judged_by_price_rules() -> None:
    result = check([("AAPL", WEEK[0], -1.0, 11.0, 12.0, float("nan"), -3.0)])
    assert rules_of(result) == [("null_value", WEEK[0])]


def test_a_volume_of_1e30_is_quarantined_and_the_limit_is_configurable() -> None:
    rows = [
        ("AAPL", WEEK[0], 10.0, 11.0, 9.0, 10.5, 1e30),
        ("AAPL", WEEK[1], 10.0, 11.0, 9.0, 10.5, 5e9),
    ]
    result = check(rows)
    assert rules_of(result) == [("implausible_volume", WEEK[0])]
    assert result.rejects["detail"][0].as_py() == "volume 1e+30 exceeds 1e+12 shares in one session"
    assert result.counts["implausible_volume"] == 1
    assert result.bars.num_rows == 1
    assert rules_of(check(rows, max_volume=1e9)) == [
        ("implausible_volume", WEEK[0]),
        ("implausible_volume", WEEK[1]),
    ]
