"""Price-move alerts: a final window whose last price moved more than ``alert_pct`` from its
first price raises one alert, keyed by (symbol, kind, window end).

The moved rows are gathered into one contiguous chunk before their ``detail`` text is built:
Polars 2.1 panics (``assertion failed: i < self.len()``) when ``pl.format`` reads string
columns holding an empty chunk before a non-empty one, which a lazy filter over a many-chunk
frame of windows leaves whenever no row of a chunk passes (the emission's windows come in
several chunks).
"""

from __future__ import annotations

import polars as pl

from marketlake.streaming.frames import collect


def detect_alerts(windows: pl.DataFrame, kinds: tuple[str, ...], alert_pct: float) -> pl.DataFrame:
    """Alert rows (symbol, ts, kind, pct_move, detail) for final rows of ``windows``.

    ``windows`` holds the columns of :func:`~marketlake.streaming.windows.aggregate_windows`
    with µs timestamps; ``pct_move`` is ``(last / first - 1) * 100``.
    """
    moved = collect(
        windows.lazy()
        .filter(pl.col("is_final") & pl.col("kind").is_in(list(kinds)))
        .with_columns(pct_move=(pl.col("last_price") / pl.col("first_price") - 1.0) * 100.0)
        .filter(pl.col("pct_move").abs() > alert_pct)
    ).rechunk()
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
