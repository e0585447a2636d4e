"""Acceptance: back-adjusted closes against Alpha Vantage's adjusted_close on real histories.

The Alpha Vantage files (TIME_SERIES_DAILY_ADJUSTED) carry the as-traded OHLCV, the provider's
adjusted close, and per-day ``dividend_amount`` and ``split_coefficient``. From those we build
bars and actions, adjust, and compare.

What the comparison shows:
- Splits match exactly (to float precision): TSLA and the split-only stretches agree to 1e-9.
- Dividends differ slightly because Alpha Vantage computes the factor of a dividend ``a`` as
  ``c / (c + a)`` with ``c`` the close ON the ex-date, whereas the convention implemented here
  (Yahoo/CRSP) is ``1 - a / p`` with ``p`` the close BEFORE the ex-date. Per ordinary quarterly
  dividend the two differ by up to ~1.5e-4; they compound over MSFT's 68 dividends and the two
  special distributions (MSFT's $3.08 in Nov 2004; GOOGL's 2014 Class C share distribution,
  recorded as a $567.97 dividend) dominate: the largest relative difference is 3.8e-3 (GOOGL).
  So the whole-history tolerance is 5e-3, and the per-event check below pins every step of
  the ratio between the two series to that convention difference to within 1e-6.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from marketlake.analytics.adjust import adjust_bars

SYMBOLS = ("AAPL", "AMZN", "FB", "GOOG", "GOOGL", "MSFT", "TSLA")
UTC_US = pl.Datetime("us", "UTC")


def read_alphavantage(real_data: Path, symbol: str) -> pl.DataFrame:
    folder = real_data / "daily" / "alphavantage_adjusted"
    (path,) = folder.glob(f"{symbol}_daily_adjusted_av_*.csv")
    return pl.read_csv(path).select(
        pl.lit(symbol).alias("symbol"),
        pl.col("timestamp").str.to_date().cast(UTC_US).alias("ts"),
        "open",
        "high",
        "low",
        "close",
        pl.col("volume").cast(pl.Float64),
        "adjusted_close",
        "dividend_amount",
        "split_coefficient",
    )


def to_bars(raw: pl.DataFrame) -> pl.DataFrame:
    return raw.select(
        "symbol",
        "ts",
        "open",
        "high",
        "low",
        "close",
        "volume",
        pl.lit("alphavantage").alias("source"),
    )


def to_actions(raw: pl.DataFrame, *, splits: bool = True, dividends: bool = True) -> pl.DataFrame:
    parts = []
    if splits:
        parts.append(
            raw.filter(pl.col("split_coefficient") != 1).select(
                "symbol",
                pl.col("ts").alias("ex_date"),
                pl.lit("split").alias("kind"),
                pl.col("split_coefficient").alias("ratio"),
                pl.lit(None, pl.Float64).alias("amount"),
            )
        )
    if dividends:
        parts.append(
            raw.filter(pl.col("dividend_amount") > 0).select(
                "symbol",
                pl.col("ts").alias("ex_date"),
                pl.lit("dividend").alias("kind"),
                pl.lit(None, pl.Float64).alias("ratio"),
                pl.col("dividend_amount").alias("amount"),
            )
        )
    return pl.concat(parts).with_columns(pl.lit("alphavantage").alias("source"))


def worst(values: pl.Series) -> float:
    """The largest value of a float series."""
    top = values.max()
    assert isinstance(top, float)
    return top


@pytest.fixture(scope="module")
def history(real_data: Path) -> pl.DataFrame:
    return pl.concat([read_alphavantage(real_data, s) for s in SYMBOLS]).sort("symbol", "ts")


@pytest.fixture(scope="module")
def compared(history: pl.DataFrame) -> pl.DataFrame:
    adjusted = adjust_bars(to_bars(history), to_actions(history))
    return adjusted.join(
        history.select(
            "symbol", "ts", pl.col("close").alias("raw_close"), "adjusted_close", "dividend_amount"
        ),
        on=["symbol", "ts"],
    ).sort("symbol", "ts")


def test_every_bar_is_adjusted(history: pl.DataFrame, compared: pl.DataFrame) -> None:
    assert compared.height == history.height


def test_adjusted_close_matches_alphavantage_within_the_dividend_convention_gap(
    compared: pl.DataFrame,
) -> None:
    relative = (compared["close"] / compared["adjusted_close"] - 1).abs()
    assert worst(relative) < 5e-3
    split_only = compared.filter(pl.col("symbol").is_in(["AMZN", "FB", "GOOG", "TSLA"]))
    assert worst((split_only["close"] / split_only["adjusted_close"] - 1).abs()) < 1e-9


def test_each_step_differs_from_alphavantage_only_by_its_dividend_convention(
    compared: pl.DataFrame,
) -> None:
    amount, close = pl.col("dividend_amount"), pl.col("raw_close")
    prior = close.shift(1).over("symbol")
    ratio = pl.col("close") / pl.col("adjusted_close")
    steps = compared.with_columns(
        (ratio.shift(1).over("symbol") / ratio).alias("step"),
        pl.when(amount > 0)
        .then((1 - amount / prior) / (close / (close + amount)))
        .otherwise(1.0)
        .alias("expected"),
    ).drop_nulls("step")
    assert worst(((steps["step"] / steps["expected"]) - 1).abs()) < 1e-6
    dividend_steps = steps.filter(pl.col("dividend_amount") > 0).height
    assert dividend_steps == compared.filter(pl.col("dividend_amount") > 0).height > 100


@pytest.mark.parametrize(("symbol", "ratio"), [("AAPL", 4.0), ("TSLA", 5.0)])
def test_split_day_has_no_jump_in_the_adjusted_series(
    compared: pl.DataFrame, symbol: str, ratio: float
) -> None:
    series = compared.filter(pl.col("symbol") == symbol)
    around = series.filter(
        pl.col("ts").dt.date().is_between(pl.date(2020, 8, 28), pl.date(2020, 8, 31))
    )
    (before_raw, after_raw) = around["raw_close"].to_list()
    (before_adj, after_adj) = around["close"].to_list()
    assert before_raw / after_raw == pytest.approx(ratio, rel=0.25)  # the as-traded drop
    assert abs(after_adj / before_adj - 1) < 0.15  # an ordinary daily move after adjustment
    assert after_adj / before_adj == pytest.approx(ratio * after_raw / before_raw, rel=1e-12)
    volume_factor = series.filter(pl.col("ts").dt.date() == pl.date(2020, 8, 28))["volume_factor"]
    assert volume_factor.item() == ratio
