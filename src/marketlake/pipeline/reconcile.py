"""Cross-provider reconciliation: closes of the same symbol and session from two sources.

The curated ``bars_1d`` table keeps one bar per (symbol, ts): the last source written wins.
Reconciliation therefore happens in the lake writer, between the bars about to be merged and
the stored bars they replace. Each incoming bar (after validation) whose stored bar comes from
another source is compared on its close; a relative difference
``|close_b - close_a| / |close_a|`` above the threshold (setting
``validation.max_source_diff``, default 0.001) is flagged into ``quality/reconciliation`` and the
warehouse table ``reconciliation``, with ``source_a``/``close_a`` the stored bar and
``source_b``/``close_b`` the incoming one. Example: AAPL on 2015-09-30 closes at 109.95 in
Alpha Vantage's daily series and at 110.30 in Yahoo's CSV export (0.32 %).

The flags are written before the bars are merged, so a writer killed in between and run
again finds the flags already there (the stored bar then has the incoming source, and nothing
new is compared): every difference is flagged exactly once. Two sources' bars of the same
session arriving in one chunk never meet a stored bar; the ``duplicate`` rule quarantines the
second with both values in its detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from marketlake.schemas import RECONCILIATION_SCHEMA

if TYPE_CHECKING:
    from marketlake.settings import Settings


@dataclass(frozen=True)
class Reconciliation:
    """Bars compared across sources and the pairs flagged (``RECONCILIATION_SCHEMA``)."""

    compared: int
    flagged: pa.Table


def max_source_diff(settings: Settings) -> float:
    """The largest relative close difference between sources that is not flagged."""
    return settings.validation.max_source_diff


def reconcile_bars(
    incoming: pa.Table, stored: pa.Table | None, threshold: float, now: datetime
) -> Reconciliation:
    """Compare ``incoming`` bars with the ``stored`` bars of the same (symbol, ts) from
    another source; flag closes that differ by more than ``threshold`` (relative)."""
    import polars as pl

    if stored is None or stored.num_rows == 0 or incoming.num_rows == 0:
        return Reconciliation(0, RECONCILIATION_SCHEMA.empty_table())
    new = pl.from_arrow(incoming.select(["symbol", "ts", "source", "close"]))
    old = pl.from_arrow(stored.select(["symbol", "ts", "source", "close"]))
    assert isinstance(new, pl.DataFrame) and isinstance(old, pl.DataFrame)
    pairs = old.rename({"source": "source_a", "close": "close_a"}).join(
        new.rename({"source": "source_b", "close": "close_b"}), on=["symbol", "ts"]
    )
    pairs = pairs.filter(pl.col("source_a") != pl.col("source_b"))
    diff = ((pl.col("close_b") - pl.col("close_a")).abs() / pl.col("close_a").abs()).alias(
        "rel_diff"
    )
    flagged = (
        pairs.with_columns(diff)
        .filter(pl.col("rel_diff").is_nan() | (pl.col("rel_diff") > threshold))
        .sort("symbol", "ts")
        .with_columns(pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("flagged_at"))
        .select(RECONCILIATION_SCHEMA.names)
    )
    return Reconciliation(pairs.height, flagged.to_arrow().cast(RECONCILIATION_SCHEMA))
