"""Back-adjustment arithmetic on hand-made bars: splits, dividends, compounding."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from marketlake.analytics.adjust import (
    ADJUSTED_BAR_SCHEMA,
    adjust_bars,
    adjust_table,
    apply_spans,
    factor_spans,
    plan_adjustments,
)
from marketlake.schemas import ADJUSTMENT_FACTOR_SCHEMA, BAR_SCHEMA

NOW = datetime(2024, 1, 2, tzinfo=UTC)
UTC_US = pl.Datetime("us", "UTC")


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def bars(symbol: str, closes: dict[str, float], volume: float = 1000.0) -> pl.DataFrame:
    days = list(closes)
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(days),
            "ts": [day(d) for d in days],
            "open": [closes[d] + 1 for d in days],
            "high": [closes[d] + 2 for d in days],
            "low": [closes[d] - 2 for d in days],
            "close": [closes[d] for d in days],
            "volume": [volume] * len(days),
            "source": ["test"] * len(days),
            "ingested_at": [NOW] * len(days),
        },
        schema_overrides={"ts": UTC_US, "ingested_at": UTC_US},
    )


def actions(rows: list[tuple[str, str, str, float | None, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [r[0] for r in rows],
            "ex_date": [day(r[1]) for r in rows],
            "kind": [r[2] for r in rows],
            "ratio": [r[3] for r in rows],
            "amount": [r[4] for r in rows],
            "source": ["test"] * len(rows),
            "ingested_at": [NOW] * len(rows),
        },
        schema={
            "symbol": pl.String,
            "ex_date": UTC_US,
            "kind": pl.String,
            "ratio": pl.Float64,
            "amount": pl.Float64,
            "source": pl.String,
            "ingested_at": UTC_US,
        },
    )


THREE_DAYS = {"2024-03-04": 100.0, "2024-03-05": 102.0, "2024-03-06": 51.0}


def test_a_two_for_one_split_halves_earlier_prices_and_doubles_volumes() -> None:
    out = adjust_bars(
        bars("AAPL", THREE_DAYS), actions([("AAPL", "2024-03-06", "split", 2.0, None)])
    )
    assert out["close"].to_list() == [50.0, 51.0, 51.0]
    assert out["open"].to_list() == [50.5, 51.5, 52.0]
    assert out["high"].to_list() == [51.0, 52.0, 53.0]
    assert out["low"].to_list() == [49.0, 50.0, 49.0]
    assert out["volume"].to_list() == [2000.0, 2000.0, 1000.0]
    assert out["price_factor"].to_list() == [0.5, 0.5, 1.0]
    assert out["volume_factor"].to_list() == [2.0, 2.0, 1.0]


def test_a_dividend_scales_earlier_prices_by_one_minus_amount_over_prior_close() -> None:
    closes = {"2024-03-04": 100.0, "2024-03-05": 50.0, "2024-03-06": 49.0}
    out = adjust_bars(
        bars("MSFT", closes), actions([("MSFT", "2024-03-06", "dividend", None, 1.0)])
    )
    factor = 1 - 1.0 / 50.0  # prior close is the as-traded close of 2024-03-05
    assert out["price_factor"].to_list() == pytest.approx([factor, factor, 1.0], rel=1e-15)
    assert out["close"].to_list() == pytest.approx([100 * factor, 50 * factor, 49.0], rel=1e-15)
    assert out["volume"].to_list() == [1000.0, 1000.0, 1000.0]
    assert out["volume_factor"].to_list() == [1.0, 1.0, 1.0]


def test_factors_compound_across_events() -> None:
    closes = {"2024-03-04": 400.0, "2024-03-05": 100.0, "2024-03-06": 98.0, "2024-03-07": 99.0}
    acts = actions(
        [
            ("AAPL", "2024-03-05", "split", 4.0, None),
            ("AAPL", "2024-03-07", "dividend", None, 2.0),
        ]
    )
    out = adjust_bars(bars("AAPL", closes), acts)
    dividend = 1 - 2.0 / 98.0
    assert out["price_factor"].to_list() == pytest.approx(
        [dividend / 4, dividend, dividend, 1.0], rel=1e-15
    )
    assert out["volume_factor"].to_list() == [4.0, 1.0, 1.0, 1.0]


def test_without_dividends_only_splits_apply() -> None:
    acts = actions(
        [
            ("AAPL", "2024-03-06", "split", 2.0, None),
            ("AAPL", "2024-03-05", "dividend", None, 1.0),
        ]
    )
    out = adjust_bars(bars("AAPL", THREE_DAYS), acts, dividends=False)
    assert out["price_factor"].to_list() == [0.5, 0.5, 1.0]


def test_symbols_are_adjusted_independently_and_sorted() -> None:
    frame = pl.concat([bars("MSFT", THREE_DAYS), bars("AAPL", THREE_DAYS)]).reverse()
    out = adjust_bars(frame, actions([("MSFT", "2024-03-06", "split", 2.0, None)]))
    assert out["symbol"].to_list() == ["AAPL"] * 3 + ["MSFT"] * 3
    keys = list(zip(out["symbol"].to_list(), out["ts"].to_list(), strict=True))
    assert keys == sorted(keys)
    assert out.filter(pl.col("symbol") == "AAPL")["price_factor"].to_list() == [1.0] * 3
    assert out.filter(pl.col("symbol") == "MSFT")["price_factor"].to_list() == [0.5, 0.5, 1.0]


def test_events_outside_the_bars() -> None:
    acts = actions(
        [
            ("AAPL", "2024-01-02", "split", 3.0, None),  # before every bar: no effect
            ("AAPL", "2024-04-01", "split", 2.0, None),  # after every bar: all bars scaled
        ]
    )
    out = adjust_bars(bars("AAPL", THREE_DAYS), acts)
    assert out["price_factor"].to_list() == [0.5, 0.5, 0.5]


def test_unusable_dividends_are_skipped_and_reported() -> None:
    acts = actions(
        [
            ("AAPL", "2024-03-04", "dividend", None, 1.0),  # no bar before it
            ("AAPL", "2024-03-06", "dividend", None, 150.0),  # more than the prior close
        ]
    )
    plan = plan_adjustments(bars("AAPL", THREE_DAYS), acts)
    assert plan.skipped["reason"].to_list() == [
        "no bar before the ex-date",
        "amount is not below the prior close",
    ]
    assert plan.events.height == 0
    out = adjust_bars(bars("AAPL", THREE_DAYS), acts)
    assert out["price_factor"].to_list() == [1.0, 1.0, 1.0]


def test_repeated_actions_count_once() -> None:
    acts = actions([("AAPL", "2024-03-06", "split", 2.0, None)] * 2)
    out = adjust_bars(bars("AAPL", THREE_DAYS), acts)
    assert out["price_factor"].to_list() == [0.5, 0.5, 1.0]


def test_adjust_table_speaks_arrow() -> None:
    table = adjust_table(
        bars("AAPL", THREE_DAYS).to_arrow(),
        actions([("AAPL", "2024-03-06", "split", 2.0, None)]).to_arrow(),
    )
    assert table.schema == ADJUSTED_BAR_SCHEMA
    assert table["close"].to_pylist() == [50.0, 51.0, 51.0]


FIVE_DAYS = {
    "2024-03-04": 400.0,
    "2024-03-05": 100.0,
    "2024-03-06": 98.0,
    "2024-03-07": 99.0,
    "2024-03-08": 97.0,
}
COMPOUND = [
    ("AAPL", "2024-03-05", "split", 4.0, None),
    ("AAPL", "2024-03-07", "dividend", None, 2.0),
    ("MSFT", "2024-04-01", "split", 2.0, None),  # after every bar: one span, not as traded
]


def test_factor_spans_are_the_runs_of_equal_factors_per_symbol() -> None:
    frame = pl.concat([bars("MSFT", FIVE_DAYS), bars("AAPL", FIVE_DAYS)]).reverse()
    adjusted = adjust_table(frame.to_arrow(), actions(COMPOUND).to_arrow())
    spans = factor_spans(adjusted)
    assert spans.schema == ADJUSTMENT_FACTOR_SCHEMA
    dividend = 1 - 2.0 / 98.0
    assert [(r["symbol"], r["valid_from"], r["valid_to"]) for r in spans.to_pylist()] == [
        ("AAPL", day("2024-03-04"), day("2024-03-05")),
        ("AAPL", day("2024-03-05"), day("2024-03-07")),
        ("AAPL", day("2024-03-07"), None),
        ("MSFT", day("2024-03-04"), None),
    ]
    assert spans["price_factor"].to_pylist() == [dividend / 4, dividend, 1.0, 0.5]
    assert spans["volume_factor"].to_pylist() == [4.0, 1.0, 1.0, 2.0]


def test_bars_times_their_span_give_the_adjusted_bars_to_the_bit() -> None:
    frame = pl.concat([bars("AAPL", FIVE_DAYS), bars("MSFT", FIVE_DAYS)])
    adjusted = adjust_bars(frame, actions(COMPOUND))
    spans = pl.from_arrow(factor_spans(adjusted.to_arrow()))
    assert isinstance(spans, pl.DataFrame)
    joined = frame.join(spans, on="symbol").filter(
        (pl.col("ts") >= pl.col("valid_from"))
        & (pl.col("valid_to").is_null() | (pl.col("ts") < pl.col("valid_to")))
    )
    rebuilt = joined.sort("symbol", "ts").select(
        "symbol",
        "ts",
        *[(pl.col(c) * pl.col("price_factor")).alias(c) for c in ("open", "high", "low", "close")],
        (pl.col("volume") * pl.col("volume_factor")).alias("volume"),
        "price_factor",
        "volume_factor",
    )
    assert rebuilt.to_dicts() == adjusted.to_dicts()  # exact floats, every bar once


def test_factor_spans_of_no_bars_is_empty() -> None:
    empty = ADJUSTED_BAR_SCHEMA.empty_table()
    assert factor_spans(empty).num_rows == 0
    assert factor_spans(empty).schema == ADJUSTMENT_FACTOR_SCHEMA


def test_apply_spans_gives_the_adjusted_bars_to_the_bit() -> None:
    frame = pl.concat([bars("MSFT", FIVE_DAYS), bars("AAPL", FIVE_DAYS)]).reverse()
    adjusted = adjust_table(frame.to_arrow(), actions(COMPOUND).to_arrow())
    rebuilt = apply_spans(frame.to_arrow(), factor_spans(adjusted))
    assert rebuilt.schema == ADJUSTED_BAR_SCHEMA
    assert rebuilt.to_pylist() == adjusted.to_pylist()  # exact floats, sorted, every bar once


def test_apply_spans_extends_the_last_span_and_leaves_out_bars_without_one() -> None:
    spans = factor_spans(
        adjust_table(
            bars("AAPL", THREE_DAYS).to_arrow(),
            actions([("AAPL", "2024-03-05", "split", 2.0, None)]).to_arrow(),
        )
    )
    later = {"2024-03-01": 99.0, **THREE_DAYS, "2024-03-07": 52.0}  # a bar before, one after
    frame = pl.concat([bars("AAPL", later), bars("IBM", {"2024-03-04": 10.0})])
    rebuilt = apply_spans(frame.to_arrow(), spans)
    assert [(r["symbol"], r["ts"].day, r["close"]) for r in rebuilt.to_pylist()] == [
        ("AAPL", 4, 50.0),
        ("AAPL", 5, 102.0),
        ("AAPL", 6, 51.0),
        ("AAPL", 7, 52.0),  # after the last span's start: its factors, as the engine gives
    ]  # 1 March is before AAPL's first span, and IBM has none: neither is in the view


def test_apply_spans_of_no_bars_is_empty() -> None:
    spans = ADJUSTMENT_FACTOR_SCHEMA.empty_table()
    assert apply_spans(BAR_SCHEMA.empty_table(), spans) == ADJUSTED_BAR_SCHEMA.empty_table()
