"""Today's default indicator columns, recorded before TA-Lib computed them, are unchanged.

``tests/data/indicators/default_indicators_AAPL_INTC_2017-2018.parquet`` holds real bars
of two symbols (one shorter than MACD's warm-up) with the default columns as marketlake's
own kernels computed them (see tests/data/MANIFEST.csv).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from marketlake.analytics.indicator_set import DEFAULT_INDICATORS
from marketlake.analytics.indicators import compute_indicators
from marketlake.schemas import INDICATOR_COLUMNS

RECORDED = (
    Path(__file__).parents[1] / "data/indicators/default_indicators_AAPL_INTC_2017-2018.parquet"
)


def test_default_columns_are_the_recorded_columns() -> None:
    assert DEFAULT_INDICATORS.columns == INDICATOR_COLUMNS


def test_default_values_match_the_recorded_values() -> None:
    recorded = pl.read_parquet(RECORDED)
    bars = recorded.select("symbol", "ts", "open", "high", "low", "close", "volume")
    assert bars.get_column("symbol").n_unique() == 2
    result = compute_indicators(bars)
    assert result.columns == ["symbol", "ts", *INDICATOR_COLUMNS]
    assert result.select("symbol", "ts").equals(bars.select("symbol", "ts"))
    for name in INDICATOR_COLUMNS:
        ours, theirs = result.get_column(name), recorded.get_column(name)
        assert ours.is_nan().sum() == 0, f"{name}: NaN instead of null"
        missing = theirs.is_null().to_numpy()
        assert missing.any() or name == "obv", f"{name}: the recording has no warm-up"
        np.testing.assert_array_equal(ours.is_null().to_numpy(), missing, err_msg=name)
        np.testing.assert_allclose(
            ours.to_numpy()[~missing], theirs.to_numpy()[~missing], rtol=1e-9, atol=0, err_msg=name
        )
