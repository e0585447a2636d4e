"""Feed rules judge provider rows only: a chunk of simulated bars passes untouched, a chunk
mixing origins has only its provider rows judged."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from marketlake.pipeline.feed_checks import check_feed_bars
from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA

NOW = datetime(2024, 2, 1, tzinfo=UTC)


def bars(rows: list[tuple[str, int, float, str]]) -> pa.Table:
    """Bars of (symbol, January day, close, source); a close of 0 makes a zero row."""
    return pa.Table.from_pylist(
        [
            {
                "symbol": symbol,
                "ts": datetime(2024, 1, day, tzinfo=UTC),
                "open": close,
                "high": close,
                "low": close,
                "close": close,
                "volume": 1000.0,
                "source": source,
                "ingested_at": NOW,
            }
            for symbol, day, close, source in rows
        ],
        schema=BAR_SCHEMA,
    )


def test_simulated_bars_are_not_judged() -> None:
    chunk = bars([("AAPL", 2, 10.0, "sim"), ("AAPL", 3, 0.0, "sim"), ("MSFT", 2, 5.0, "sim")])
    checked = check_feed_bars(chunk, CORPORATE_ACTION_SCHEMA.empty_table())
    assert checked.kept.to_pylist() == chunk.to_pylist()
    assert checked.rejects.num_rows == 0 and checked.counts == {}


def test_only_provider_rows_of_a_mixed_chunk_are_judged() -> None:
    chunk = bars(
        [
            ("AAPL", 2, 10.0, "yahoo"),
            ("AAPL", 3, 0.0, "yahoo"),
            ("MSFT", 2, 0.0, "sim"),
            ("NVDA", 2, 0.0, "file:prices.csv"),
        ]
    )
    checked = check_feed_bars(chunk, CORPORATE_ACTION_SCHEMA.empty_table())
    kept = {(r["symbol"], r["ts"].day, r["source"]) for r in checked.kept.to_pylist()}
    assert kept == {("AAPL", 2, "yahoo"), ("MSFT", 2, "sim")}
    assert checked.counts == {"zero_row": 2}


def test_a_chunk_of_provider_rows_only_is_judged_whole() -> None:
    chunk = bars([("AAPL", 2, 10.0, "yahoo"), ("AAPL", 3, 0.0, "alphavantage")])
    checked = check_feed_bars(chunk, CORPORATE_ACTION_SCHEMA.empty_table())
    assert [r["ts"].day for r in checked.kept.to_pylist()] == [2]
    assert checked.counts == {"zero_row": 1}
