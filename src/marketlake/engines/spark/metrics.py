"""The daily metrics as Spark SQL window functions over each symbol's sessions.

The same definitions as :mod:`marketlake.analytics.metrics` (``prev`` is the symbol's
previous close): change %, log return, range % (over the bar's own close on the first bar),
gap %, and the annualised sample standard deviation of the last 20 log returns, NULL until
20 returns exist.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from marketlake.analytics.metrics import TRADING_DAYS, VOLATILITY_WINDOW

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def with_daily_metrics(bars: DataFrame) -> DataFrame:
    """``bars`` (symbol, ts, open, high, low, close, ...) with the metric columns added."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_session = Window.partitionBy("symbol").orderBy("ts")
    last_returns = by_session.rowsBetween(-(VOLATILITY_WINDOW - 1), 0)
    prev = F.lag("close").over(by_session)
    close, high, low, open_ = (F.col(name) for name in ("close", "high", "low", "open"))
    with_returns = bars.withColumn("_prev", prev).withColumns(
        {
            "change_pct": (close / F.col("_prev") - 1.0) * 100.0,
            "log_return": F.ln(close / F.col("_prev")),
            "range_pct": (high - low) / F.coalesce(F.col("_prev"), close) * 100.0,
            "gap_pct": (open_ / F.col("_prev") - 1.0) * 100.0,
        }
    )
    returns = F.col("log_return")
    volatility = F.when(
        F.count(returns).over(last_returns) >= VOLATILITY_WINDOW,
        F.stddev_samp(returns).over(last_returns) * math.sqrt(TRADING_DAYS),
    )
    return with_returns.withColumn("volatility_20d", volatility).drop("_prev")
