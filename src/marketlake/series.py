"""Per-symbol time series frames: ordering by (symbol, time), skipping a sort already done."""

from __future__ import annotations

import polars as pl


def sort_by_key(frame: pl.DataFrame, symbol: str = "symbol", ts: str = "ts") -> pl.DataFrame:
    """``frame`` sorted by ``symbol`` then ``ts``; rows with equal keys keep their order.

    Data usually arrives sorted, and checking costs a fraction of sorting a string key.
    """
    if frame.height < 2:
        return frame
    sym, time = pl.col(symbol), pl.col(ts)
    ordered = (sym > sym.shift(1)) | ((sym == sym.shift(1)) & (time >= time.shift(1)))
    if frame.select(ordered.fill_null(True).all()).item():
        return frame
    return frame.sort(symbol, ts, maintain_order=True)


def run_starts(symbol: str = "symbol") -> pl.Expr:
    """True on the first row of each symbol in a frame sorted by symbol."""
    return (pl.col(symbol) != pl.col(symbol).shift(1)).fill_null(True)
