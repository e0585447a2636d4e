"""The implausible_jump rule: splits explain jumps, previous bars extend the check backwards."""

from __future__ import annotations

import numpy as np

from marketlake.quality.bars import validate_bars
from tests.quality.factories import NOW, action_table, bar_table

DAYS = [f"2024-02-{d:02d}" for d in (5, 6, 7, 8, 9, 12, 13, 14, 15, 16)]
SESSIONS = np.array(DAYS, dtype="datetime64[D]")


def closes(symbol: str, values: list[float], days: list[str] = DAYS):
    return [
        (symbol, d, c, c * 1.01, c * 0.99, c, 1000.0) for d, c in zip(days, values, strict=False)
    ]


def jumps(result) -> list[str]:
    rejects = result.rejects.filter(
        np.array(result.rejects["rule"].to_pylist(), dtype=object) == "implausible_jump"
    )
    return [t.date().isoformat() for t in rejects["ts"].to_pylist()]


def run(rows, actions=(), previous=None, max_daily_jump=0.6):
    return validate_bars(
        bar_table(rows),
        action_table(list(actions)),
        sessions=SESSIONS,
        previous=bar_table(previous) if previous is not None else None,
        max_daily_jump=max_daily_jump,
        now=NOW,
    )


def test_a_drop_beyond_the_limit_is_quarantined_with_the_values() -> None:
    result = run(closes("AAPL", [100, 101, 30, 30.5, 31]))
    assert jumps(result) == [DAYS[2]]
    detail = result.rejects["detail"][0].as_py()
    assert detail == "close 30.0 vs previous close 101.0 on 2024-02-06: change -70.3% exceeds 60%"
    assert result.counts["implausible_jump"] == 1
    assert result.bars.num_rows == 4


def test_moves_within_the_limit_pass_and_the_limit_is_configurable() -> None:
    rows = closes("AAPL", [100, 150, 100])  # +50 %, -33 %
    assert jumps(run(rows)) == []
    assert jumps(run(rows, max_daily_jump=0.4)) == [DAYS[1]]


def test_a_split_on_the_ex_date_explains_the_drop() -> None:
    rows = closes("AAPL", [400, 404, 101, 102])
    split = [("AAPL", DAYS[2], "split", 4.0, None)]
    assert jumps(run(rows, split)) == []
    assert jumps(run(rows)) == [DAYS[2]]


def test_a_split_of_another_symbol_or_day_does_not_explain_it() -> None:
    rows = closes("AAPL", [400, 404, 101, 102])
    assert jumps(run(rows, [("MSFT", DAYS[2], "split", 4.0, None)])) == [DAYS[2]]
    assert jumps(run(rows, [("AAPL", DAYS[4], "split", 4.0, None)])) == [DAYS[2]]


def test_a_split_that_does_not_explain_the_move_still_flags() -> None:
    rows = closes("AAPL", [400, 404, 404, 405])  # price unchanged on a 4:1 ex-date
    result = run(rows, [("AAPL", DAYS[2], "split", 4.0, None)])
    assert jumps(result) == [DAYS[2]]
    assert "previous close divided by split ratio 4.0" in result.rejects["detail"][0].as_py()


def test_a_split_inside_a_gap_between_bars_counts() -> None:
    days = [DAYS[0], DAYS[1], DAYS[4]]  # bars missing on the ex-date DAYS[2]
    rows = closes("AAPL", [400, 404, 200], days)
    assert jumps(run(rows, [("AAPL", DAYS[2], "split", 2.0, None)])) == []


def test_a_reverse_split_explains_a_rise() -> None:
    rows = closes("AAPL", [2.0, 2.1, 21.0, 21.5])
    assert jumps(run(rows, [("AAPL", DAYS[2], "split", 0.1, None)])) == []


def test_the_first_row_is_checked_against_the_previous_stored_bar() -> None:
    rows = closes("AAPL", [30, 30.5], DAYS[5:7])
    previous = closes("AAPL", [90, 100], DAYS[0:2])
    result = run(rows, previous=previous)
    assert jumps(result) == [DAYS[5]]
    assert "previous close 100.0 on 2024-02-06" in result.rejects["detail"][0].as_py()
    assert jumps(run(rows)) == []


def test_a_split_between_the_stored_bar_and_the_batch_explains_the_gap() -> None:
    rows = closes("AAPL", [50, 51], DAYS[5:7])
    previous = closes("AAPL", [100], DAYS[1:2])
    assert jumps(run(rows, [("AAPL", DAYS[3], "split", 2.0, None)], previous=previous)) == []


def test_previous_bars_of_other_symbols_do_not_leak() -> None:
    rows = closes("AAPL", [30, 31], DAYS[5:7]) + closes("MSFT", [300, 301], DAYS[5:7])
    previous = closes("AAPL", [30], DAYS[0:1]) + closes("MSFT", [300], DAYS[0:1])
    assert jumps(run(rows, previous=previous)) == []


def test_a_single_bad_print_is_quarantined_but_the_recovery_is_kept() -> None:
    result = run(closes("AAPL", [100, 101, 1000, 102, 103]))
    assert jumps(result) == [DAYS[2]]
    assert result.bars.num_rows == 4


def test_a_lasting_level_shift_flags_only_its_first_day() -> None:
    result = run(closes("AAPL", [100, 101, 300, 302, 301, 303]))
    assert jumps(result) == [DAYS[2]]


def test_jumps_are_checked_on_good_rows_only() -> None:
    rows = [*closes("AAPL", [100, 101]), ("AAPL", DAYS[2], 10.0, 11.0, 9.0, float("nan"), 1.0)]
    rows += closes("AAPL", [102], DAYS[3:4])
    result = run(rows)
    assert jumps(result) == []
    assert result.counts["null_value"] == 1


def test_each_symbol_starts_its_own_chain() -> None:
    rows = closes("AAPL", [100, 101]) + closes("MSFT", [10, 10.1])
    assert jumps(run(rows)) == []


def test_a_rejected_bar_does_not_make_later_scattered_sessions_implausible() -> None:
    """A re-fetch of gaps brings sessions weeks apart; each is judged against the stored bar
    just before it, not against the batch's previous row (the cascade seen on S0111)."""
    stored = closes(
        "AAPL", [17.5, 17.6, 14.7, 15.0, 188.0, 190.0], [DAYS[i] for i in (0, 1, 3, 4, 6, 7)]
    )
    batch = closes("AAPL", [29.8, 15.2, 191.0], [DAYS[i] for i in (2, 5, 8)])
    result = run(batch, previous=stored)
    assert jumps(result) == [DAYS[2]]
    assert "previous close 17.6 on 2024-02-06" in result.rejects["detail"][0].as_py()
    assert result.bars.num_rows == 2
    # with only the last stored bar before the batch, the cascade shows
    assert jumps(run(batch, previous=stored[:2])) == [DAYS[2], DAYS[8]]


def test_stored_bars_are_context_and_never_flagged() -> None:
    stored = closes("AAPL", [100, 400], DAYS[0:2])  # a stored jump is not judged again
    result = run(closes("AAPL", [401, 402], DAYS[2:4]), previous=stored)
    assert jumps(result) == []
    assert result.rejects.num_rows == 0


def test_a_batch_row_replaces_the_stored_bar_of_its_session() -> None:
    stored = closes("AAPL", [100, 10, 101], DAYS[0:3])  # the bad stored value of DAYS[1]
    result = run(closes("AAPL", [100.5], DAYS[1:2]), previous=stored)
    assert jumps(result) == []
