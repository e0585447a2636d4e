"""compute_daily_metrics against plain numpy on small hand-made bars."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from marketlake.analytics.metrics import METRIC_COLUMNS, compute_daily_metrics


def bars_of(symbol: str, close: list[float], seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    size = len(close)
    closes = np.array(close)
    days = np.datetime64("2021-03-01", "us") + np.arange(size) * np.timedelta64(1, "D")
    return pl.DataFrame(
        {
            "symbol": [symbol] * size,
            "ts": days,
            "open": closes * (1 + rng.normal(0, 0.01, size)),
            "high": closes * (1 + rng.uniform(0.001, 0.02, size)),
            "low": closes * (1 - rng.uniform(0.001, 0.02, size)),
            "close": closes,
            "volume": rng.uniform(1e3, 1e4, size),
        }
    ).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))


def expected_metrics(bars: pl.DataFrame) -> dict[str, np.ndarray]:
    """The documented definitions, written out with numpy for one symbol."""
    close, open_, high, low = (
        bars.get_column(n).to_numpy() for n in ("close", "open", "high", "low")
    )
    prev = np.concatenate(([np.nan], close[:-1]))
    log_return = np.log(close / prev)
    volatility = np.full(len(close), np.nan)
    for i in range(20, len(close)):
        volatility[i] = np.std(log_return[i - 19 : i + 1], ddof=1) * math.sqrt(252)
    return {
        "change_pct": (close / prev - 1) * 100,
        "log_return": log_return,
        "range_pct": (high - low) / np.where(np.isnan(prev), close, prev) * 100,
        "gap_pct": (open_ / prev - 1) * 100,
        "volatility_20d": volatility,
    }


def walk(size: int, seed: int) -> list[float]:
    return list(50 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.02, size))))


def test_metrics_match_numpy_per_symbol() -> None:
    parts = [
        bars_of("AAA", walk(45, 1), 1),
        bars_of("BBB", walk(30, 2), 2),
        bars_of("C", walk(3, 3), 3),
    ]
    result = compute_daily_metrics(pl.concat(parts))
    assert result.columns == ["symbol", "ts", "close", *METRIC_COLUMNS]
    for part in parts:
        ours = result.filter(pl.col("symbol") == part.get_column("symbol")[0])
        assert ours.get_column("ts").equals(part.get_column("ts"))
        for name, expected in expected_metrics(part).items():
            column = ours.get_column(name)
            np.testing.assert_array_equal(
                column.is_null().to_numpy(), np.isnan(expected), err_msg=name
            )
            np.testing.assert_allclose(
                column.drop_nulls().to_numpy(),
                expected[~np.isnan(expected)],
                rtol=1e-12,
                err_msg=name,
            )


def test_first_bar_and_volatility_warm_up() -> None:
    result = compute_daily_metrics(bars_of("AAA", walk(25, 4), 4))
    first = result.row(0, named=True)
    assert first["change_pct"] is None and first["log_return"] is None and first["gap_pct"] is None
    assert first["range_pct"] is not None and first["range_pct"] > 0
    volatility = result.get_column("volatility_20d")
    assert volatility[:20].null_count() == 20
    assert volatility[20:].null_count() == 0


def test_known_values() -> None:
    bars = pl.DataFrame(
        {
            "symbol": ["X", "X"],
            "ts": np.array(["2021-01-04", "2021-01-05"], dtype="datetime64[us]"),
            "open": [10.0, 11.0],
            "high": [10.5, 12.5],
            "low": [9.5, 10.5],
            "close": [10.0, 12.0],
            "volume": [1.0, 1.0],
        }
    ).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    second = compute_daily_metrics(bars).row(1, named=True)
    assert math.isclose(second["change_pct"], 20.0)
    assert math.isclose(second["log_return"], math.log(1.2))
    assert math.isclose(second["range_pct"], 20.0)
    assert math.isclose(second["gap_pct"], 10.0)
    assert math.isclose(compute_daily_metrics(bars).row(0, named=True)["range_pct"], 10.0)
