"""Daily metrics per symbol from adjusted daily bars.

Definitions (``prev`` is the symbol's previous close; every column is per symbol, so one
symbol's bars never affect another's):

- ``change_pct`` = (close / prev - 1) x 100
- ``log_return`` = ln(close / prev)
- ``range_pct``  = (high - low) / prev x 100; on a symbol's first bar, which has no previous
  close, the same bar's close is the denominator, so the day's range is known from day one
- ``gap_pct``    = (open / prev - 1) x 100
- ``volatility_20d`` = sample standard deviation (ddof = 1) of the last 20 ``log_return``
  values x sqrt(252), annualised; null until 20 returns exist (from the 21st bar on)

``change_pct``, ``log_return`` and ``gap_pct`` are null on each symbol's first bar. Missing
(null) inputs give null outputs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from marketlake.schemas import METRIC_COLUMNS

if TYPE_CHECKING:
    import polars as pl

VOLATILITY_WINDOW = 20
TRADING_DAYS = 252


def compute_daily_metrics(bars: pl.DataFrame) -> pl.DataFrame:
    """Daily metrics for every bar of ``bars`` (sorted by symbol, ts), in input order.

    Returns symbol, ts, close and the columns of :data:`METRIC_COLUMNS` (Float64).
    """
    import polars as pl

    prev = pl.col("close").shift(1).over("symbol")
    log_return = (pl.col("close") / prev).log()
    return (
        bars.lazy()
        .select(
            "symbol",
            "ts",
            pl.col("close").cast(pl.Float64),
            ((pl.col("close") / prev - 1.0) * 100.0).alias("change_pct"),
            log_return.alias("log_return"),
            ((pl.col("high") - pl.col("low")) / pl.coalesce(prev, pl.col("close")) * 100.0).alias(
                "range_pct"
            ),
            ((pl.col("open") / prev - 1.0) * 100.0).alias("gap_pct"),
            (
                log_return.rolling_std(VOLATILITY_WINDOW, min_samples=VOLATILITY_WINDOW, ddof=1)
                .over("symbol")
                .mul(math.sqrt(TRADING_DAYS))
            ).alias("volatility_20d"),
        )
        .with_columns(pl.col(name).cast(pl.Float64) for name in METRIC_COLUMNS)
        .collect()
    )
