"""Price-move alerts: a final window whose last price moved more than ``alert_pct`` from its
first price raises one alert, keyed by (symbol, kind, window end)."""

from __future__ import annotations

import polars as pl


def detect_alerts(windows: pl.LazyFrame, kinds: tuple[str, ...], alert_pct: float) -> pl.LazyFrame:
    """Alert rows (symbol, ts, kind, pct_move, detail) for final rows of ``windows``.

    ``windows`` holds the columns of :func:`~marketlake.streaming.windows.aggregate_windows`
    with µs timestamps; ``pct_move`` is ``(last / first - 1) * 100``.
    """
    moved = (
        windows.filter(pl.col("is_final") & pl.col("kind").is_in(list(kinds)))
        .with_columns(pct_move=(pl.col("last_price") / pl.col("first_price") - 1.0) * 100.0)
        .filter(pl.col("pct_move").abs() > alert_pct)
    )
    start = pl.col("window_start").cast(pl.Datetime("us", "UTC")).dt.strftime("%Y-%m-%dT%H:%MZ")
    end = pl.col("window_end").cast(pl.Datetime("us", "UTC")).dt.strftime("%Y-%m-%dT%H:%MZ")
    return moved.select(
        "symbol",
        pl.col("window_end").alias("ts"),
        "kind",
        "pct_move",
        pl.format(
            "{} moved {}% in {} window {}..{} (first {}, last {}; threshold {}%)",
            "symbol",
            pl.col("pct_move").round(3),
            "kind",
            start,
            end,
            "first_price",
            "last_price",
            pl.lit(alert_pct),
        ).alias("detail"),
    )
