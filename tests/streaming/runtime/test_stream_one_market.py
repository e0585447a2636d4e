"""Streaming a day and running the batch for it give one market: the day's 1-minute bars
add up to the batch's daily bar."""

from __future__ import annotations

from pathlib import Path

from pipeline.cli import marketlake, sql_json


def test_a_streamed_day_adds_up_to_the_batch_daily_bar(home: Path) -> None:
    symbols = ("--symbols", "AAPL,JPM", "--seed", "5")
    batch = marketlake(
        "run", "--home", str(home), "--start", "2024-03-04", "--end", "2024-03-04", "--quiet",
        *symbols,
    )  # fmt: skip
    assert batch.returncode == 0, batch.stderr
    streamed = marketlake(
        "stream", "--home", str(home), "--start", "2024-03-04T14:30:00", "--count", "45000",
        "--event-rate", "1.5", "--quiet", *symbols,
    )  # fmt: skip
    assert streamed.returncode == 0, streamed.stderr
    day = sql_json(
        home,
        """
        SELECT symbol, arg_min(open, ts) AS open, max(high) AS high, min(low) AS low,
               arg_max(close, ts) AS close, sum(volume) AS volume, count(*) AS minutes
        FROM bars_1m WHERE CAST(ts AS DATE) = DATE '2024-03-04'
        GROUP BY symbol ORDER BY symbol
        """,
    )
    daily = sql_json(
        home,
        "SELECT symbol, open, high, low, close, volume FROM bars_1d "
        "WHERE ts = DATE '2024-03-04' ORDER BY symbol",
    )
    assert [r["minutes"] for r in day] == [390, 390]  # the whole session was streamed
    assert [{k: v for k, v in r.items() if k != "minutes"} for r in day] == daily
