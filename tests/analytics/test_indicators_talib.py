"""compute_indicators against TA-Lib's own abstract API, symbol by symbol.

What marketlake adds around TA-Lib: each symbol's bars alone, in session order; the
configured parameters and inputs; one column per output; NaN -> null; nulls in as NaN.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import talib
from talib import abstract

from marketlake.analytics.indicator_config import resolve_indicators
from marketlake.analytics.indicator_set import (
    DEFAULT_INDICATORS,
    IndicatorSet,
)
from marketlake.analytics.indicators import compute_indicators
from marketlake.errors import TerminalError

WIDE_TOML = Path(__file__).parents[2] / "docs" / "indicators-wide.toml"


def wide_set() -> IndicatorSet:
    with WIDE_TOML.open("rb") as handle:
        return resolve_indicators(tomllib.load(handle)["indicators"])


def talib_reference(bars: pl.DataFrame, indicators: IndicatorSet) -> dict[str, np.ndarray]:
    """Every column of one symbol's bars, from TA-Lib's abstract API (its own input lookup)."""
    prices = {
        name: bars.get_column(name).cast(pl.Float64).to_numpy().astype(np.float64)
        for name in ("open", "high", "low", "close", "volume")
    }
    reference: dict[str, np.ndarray] = {}
    for indicator in indicators.indicators:
        function = abstract.Function(indicator.function)
        function.set_parameters(dict(indicator.parameters))
        default_inputs = [
            name
            for value in function.input_names.values()
            for name in ([value] if isinstance(value, str) else value)
        ]
        if list(indicator.inputs) != default_inputs:  # an ``inputs`` choice: the one input
            (key,) = function.input_names
            function.set_input_names({key: indicator.inputs[0]})
        outputs = function.run(prices)
        values = outputs if isinstance(outputs, list) else [outputs]
        for (output, column), array in zip(indicator.outputs, values, strict=True):
            assert output in function.output_names
            reference[column] = np.asarray(array, dtype=np.float64)
    return reference


def assert_matches_talib(bars: pl.DataFrame, indicators: IndicatorSet = DEFAULT_INDICATORS) -> None:
    """Per symbol: null exactly where TA-Lib has NaN, values within 1e-9 relative elsewhere."""
    result = compute_indicators(bars, indicators)
    assert result.columns == ["symbol", "ts", *indicators.columns]
    assert result.select("symbol", "ts").equals(bars.select("symbol", "ts"))
    for symbol in bars.get_column("symbol").unique(maintain_order=True):
        ours = result.filter(pl.col("symbol") == symbol)
        reference = talib_reference(bars.filter(pl.col("symbol") == symbol), indicators)
        for name in indicators.columns:
            column = ours.get_column(name)
            assert column.dtype == pl.Float64
            expected = reference[name]
            assert column.is_nan().sum() == 0, f"{symbol} {name}: NaN instead of null"
            missing = column.is_null().to_numpy()
            np.testing.assert_array_equal(missing, np.isnan(expected), err_msg=f"{symbol} {name}")
            np.testing.assert_allclose(
                column.to_numpy()[~missing],
                expected[~missing],
                rtol=1e-9,
                atol=0,
                err_msg=f"{symbol} {name}",
            )


def read_nasdaq_csv(path: Path) -> pl.DataFrame:
    """A nasdaq-format file (date,close,volume,open,high,low; newest first) as sorted bars."""
    symbol = path.name.split("_")[0]
    return (
        pl.read_csv(path)
        .select(
            pl.lit(symbol).alias("symbol"),
            pl.col("date")
            .str.strptime(pl.Datetime("us"), "%m/%d/%Y")
            .dt.replace_time_zone("UTC")
            .alias("ts"),
            *(pl.col(name).cast(pl.Float64) for name in ("open", "high", "low", "close", "volume")),
        )
        .sort("ts")
    )


@pytest.fixture(scope="module")
def real_bars(real_data: Path) -> pl.DataFrame:
    files = sorted((real_data / "daily" / "nasdaq_format").glob("*.csv"))
    assert len(files) >= 3
    return pl.concat([read_nasdaq_csv(path) for path in files])


def make_bars(
    symbol: str, close: np.ndarray, seed: int = 0, **overrides: np.ndarray
) -> pl.DataFrame:
    """Bars of one symbol around ``close`` with random but consistent high/low/open/volume."""
    rng = np.random.default_rng(seed)
    size = len(close)
    columns = {
        "open": close + rng.normal(0.0, 0.3, size),
        "high": close + rng.uniform(0.0, 1.0, size),
        "low": close - rng.uniform(0.0, 1.0, size),
        "close": close,
        "volume": rng.integers(1_000, 100_000, size).astype(np.float64),
    }
    columns.update(overrides)
    days = np.datetime64("2020-01-01", "us") + np.arange(size) * np.timedelta64(1, "D")
    return pl.DataFrame({"symbol": [symbol] * size, "ts": days, **columns}).with_columns(
        pl.col("ts").dt.replace_time_zone("UTC")
    )


def random_walk(size: int, seed: int, start: float = 100.0) -> np.ndarray:
    return start + np.cumsum(np.random.default_rng(seed).normal(0.0, 1.0, size))


def test_real_series_match_talib(real_bars: pl.DataFrame) -> None:
    assert_matches_talib(real_bars)


def test_the_wide_set_matches_talib(real_bars: pl.DataFrame) -> None:
    indicators = wide_set()
    functions = {indicator.function for indicator in indicators.indicators}
    assert len(functions) >= 30
    assert {"MACD", "STOCH", "AROON", "BBANDS", "CDLDOJI", "CDLENGULFING"} <= functions
    two = real_bars.filter(pl.col("symbol").is_in(["AAPL", "JPM"]))
    assert_matches_talib(two, indicators)
    candles = compute_indicators(two, indicators).get_column("cdl_engulfing")
    values = set(candles.unique().to_list())  # TA-Lib's pattern scores, as float64
    assert {-100.0, 0.0, 100.0} <= values and all(v == int(v) for v in values)


def test_symbols_do_not_leak_into_each_other(real_bars: pl.DataFrame) -> None:
    together = compute_indicators(real_bars)
    for symbol, part in real_bars.partition_by("symbol", as_dict=True).items():
        alone = compute_indicators(part)
        assert together.filter(pl.col("symbol") == symbol[0]).equals(alone)


def test_symbols_of_different_lengths(real_bars: pl.DataFrame) -> None:
    trimmed = real_bars.filter(
        pl.int_range(pl.len()).over("symbol") >= pl.col("symbol").rank("dense").cast(pl.Int64) * 400
    )
    assert trimmed.group_by("symbol").len().get_column("len").n_unique() > 1
    assert_matches_talib(trimmed)


def test_parameters_and_inputs_reach_talib() -> None:
    bars = make_bars("P", random_walk(120, 9))
    indicators = resolve_indicators(
        {
            "rsi_7": {"fn": "RSI", "timeperiod": 7},
            "rsi_21": {"fn": "RSI", "timeperiod": 21},
            "high_max": {"fn": "MAX", "timeperiod": 10, "inputs": {"price": "high"}},
        }
    )
    result = compute_indicators(bars, indicators)
    close = bars.get_column("close").to_numpy()
    high = bars.get_column("high").to_numpy()
    for name, expected in (
        ("rsi_7", talib.RSI(close, 7)),
        ("rsi_21", talib.RSI(close, 21)),
        ("high_max", talib.MAX(high, 10)),
    ):
        np.testing.assert_array_equal(result.get_column(name).fill_null(np.nan), expected)
    assert result.get_column("rsi_7").null_count() == 7
    assert result.get_column("rsi_21").null_count() == 21


@pytest.mark.parametrize("size", [1, 14, 33, 34])
def test_short_series(size: int) -> None:
    bars = pl.concat(
        [make_bars("SHORT", random_walk(size, 1)), make_bars("LONG", random_walk(60, 2))]
    )
    assert_matches_talib(bars)


def test_constant_prices() -> None:
    close = np.full(80, 5.0)
    bars = make_bars("FLAT", close, open=close, high=close, low=close)
    assert_matches_talib(bars)
    result = compute_indicators(bars)
    assert result.get_column("rsi_14").drop_nulls().to_list() == [0.0] * (80 - 14)


def test_nan_close_in_the_middle() -> None:
    close = random_walk(300, 3)
    close[150] = np.nan
    bars = make_bars("GAP", close)
    assert_matches_talib(bars)
    assert compute_indicators(bars).get_column("sma_20")[150:].null_count() == 150


def test_leading_nans_and_nan_high_low_volume() -> None:
    close = random_walk(200, 5)
    close[:4] = np.nan
    other = make_bars("X", random_walk(200, 6))
    high = other.get_column("high").to_numpy().copy()
    high[:7] = np.nan
    low = other.get_column("low").to_numpy().copy()
    low[120] = np.nan
    volume = other.get_column("volume").to_numpy().copy()
    volume[60] = np.nan
    bars = make_bars("LEAD", close, high=high, low=low, volume=volume)
    assert_matches_talib(pl.concat([bars, make_bars("ZZZ", random_walk(90, 7))]))


def test_all_nan_close() -> None:
    assert_matches_talib(make_bars("NONE", np.full(30, np.nan)))


def test_null_input_is_treated_as_nan() -> None:
    as_null = make_bars("NUL", random_walk(80, 8)).with_columns(
        pl.when(pl.int_range(pl.len()) == 40).then(None).otherwise(pl.col("close")).alias("close")
    )
    as_nan = as_null.with_columns(pl.col("close").fill_null(float("nan")))
    assert compute_indicators(as_null).equals(compute_indicators(as_nan))
    assert_matches_talib(as_nan)


def test_unsorted_symbols_are_rejected() -> None:
    bars = pl.concat([make_bars("A", random_walk(5, 1)), make_bars("B", random_walk(5, 2))])
    with pytest.raises(TerminalError, match="sorted"):
        compute_indicators(pl.concat([bars, make_bars("A", random_walk(3, 3))]))


def test_missing_input_columns_are_reported() -> None:
    bars = make_bars("A", random_walk(5, 1)).drop("volume")
    with pytest.raises(TerminalError, match="missing \\['volume'\\]"):
        compute_indicators(bars)


def test_empty_input() -> None:
    result = compute_indicators(make_bars("E", random_walk(3, 1)).head(0))
    assert result.height == 0
    assert result.columns == ["symbol", "ts", *DEFAULT_INDICATORS.columns]
