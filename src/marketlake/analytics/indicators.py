"""Technical indicators per symbol, identical to TA-Lib (default unstable period 0).

Input: adjusted daily bars (symbol, ts, open, high, low, close, volume), sorted by
(symbol, ts); several symbols may be present and never influence each other.

Output columns (one row per input row) and their TA-Lib definitions:

============  ===============================================  ======================
column        TA-Lib call                                      first value at bar
============  ===============================================  ======================
sma_20        SMA(close, 20)                                   19
ema_20        EMA(close, 20), seeded with SMA of bars 0..19    19
rsi_14        RSI(close, 14), Wilder smoothing                 14
macd          MACD(close, 12, 26, 9)[0]                        33
macd_signal   MACD(close, 12, 26, 9)[1]                        33
macd_hist     MACD(close, 12, 26, 9)[2]                        33
bb_upper      BBANDS(close, 20, 2, 2, SMA)[0]                  19
bb_middle     BBANDS(close, 20, 2, 2, SMA)[1]                  19
bb_lower      BBANDS(close, 20, 2, 2, SMA)[2]                  19
atr_14        ATR(high, low, close, 14)                        14
stddev_20     STDDEV(close, 20, 1) (population)                19
obv           OBV(close, volume)                               0
============  ===============================================  ======================

Bar numbers count from a symbol's first bar whose inputs are all present, as TA-Lib's Python
wrapper does with leading NaNs. Where TA-Lib returns NaN (warm-up, too-short series, values
after a NaN input) the column is **null**, so SQL engines see missing values rather than
NaN. A null input is treated as NaN. Values agree with TA-Lib's within 1e-9 relative (about
1e-11 in practice): every running sum and recursion repeats TA-Lib's floating-point
operations in TA-Lib's order (see :mod:`marketlake.analytics.smoothing`).

Symbols are laid out as panels (:mod:`marketlake.analytics.panel`) and swept through time
once, a block of bars at a time, with each numpy call spanning all symbols
(:mod:`marketlake.analytics.sweep`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from marketlake.analytics.kernels import resynced_stddev
from marketlake.analytics.panel import Layout, allocate, first_valid, size_buckets
from marketlake.analytics.sweep import OUTPUTS, Panels, sweep_indicators
from marketlake.schemas import INDICATOR_COLUMNS

if TYPE_CHECKING:
    import polars as pl

REQUIRED_COLUMNS = ("symbol", "ts", "high", "low", "close", "volume")
_BAND_STD = "_bband_stddev"  # BBANDS' standard deviation (STDDEV re-sums, BBANDS does not)
_BAND_WIDTH = 2.0


def _bucket_indicators(
    columns: dict[str, np.ndarray], starts: np.ndarray, ends: np.ndarray
) -> list[tuple[Layout, dict[str, np.ndarray]]]:
    """Indicator panels of one bucket of symbols, each with the layout to scatter it by."""
    close, high, low, volume = (columns[name] for name in ("close", "high", "low", "volume"))
    width = int((ends - starts).max())

    def layout(*names: str) -> Layout:
        offsets = first_valid([columns[name] for name in names], starts, ends)
        return Layout(starts + offsets, ends - starts - offsets, width)

    on_close = layout("close")
    on_bars = layout("high", "low", "close")
    on_volume = layout("close", "volume")
    close_panel = on_close.gather(close)

    def closes_on(other: Layout) -> np.ndarray:
        return close_panel if np.array_equal(other.starts, on_close.starts) else other.gather(close)

    panels = Panels(
        close=close_panel,
        high=on_bars.gather(high),
        low=on_bars.gather(low),
        bars_close=closes_on(on_bars),
        volume=on_volume.gather(volume),
        volume_close=closes_on(on_volume),
    )
    out = sweep_indicators(panels)
    out[_BAND_STD] = out["stddev_20"]
    out["stddev_20"] = resynced_stddev(close_panel, out["stddev_20"], 20)
    atr = {"atr_14": out.pop("atr_14")}
    on_volume_out = {"obv": out.pop("obv")}
    return [(on_close, out), (on_bars, atr), (on_volume, on_volume_out)]


def _frame(bars: pl.DataFrame, flat: dict[str, np.ndarray]) -> pl.DataFrame:
    """The result frame, with BBANDS and the MACD histogram derived from the flat columns.

    BBANDS(20, 2, 2) is ``sma ± std * 2`` and the histogram ``macd - signal``, the
    operations TA-Lib performs; each is one sequential pass over flat columns.
    """
    import polars as pl

    size = len(flat["sma_20"])
    band = np.multiply(flat.pop(_BAND_STD), _BAND_WIDTH, out=allocate((size,)))
    flat["bb_upper"] = np.add(flat["sma_20"], band, out=allocate((size,)))
    flat["bb_lower"] = np.subtract(flat["sma_20"], band, out=band)
    flat["macd_hist"] = np.subtract(flat["macd"], flat["macd_signal"], out=allocate((size,)))
    series = {name: pl.Series(name, values, nan_to_null=True) for name, values in flat.items()}
    series["bb_middle"] = series["sma_20"].alias("bb_middle")
    return bars.select("symbol", "ts").with_columns(series[name] for name in INDICATOR_COLUMNS)


def compute_indicators(bars: pl.DataFrame) -> pl.DataFrame:
    """TA-Lib-identical indicators for every bar of ``bars`` (see the module docstring).

    ``bars`` must be sorted by (symbol, ts). Returns symbol, ts and the columns of
    :data:`INDICATOR_COLUMNS` (Float64, null where TA-Lib gives NaN), in input order.
    """
    import polars as pl

    from marketlake.errors import TerminalError

    missing = [name for name in REQUIRED_COLUMNS if name not in bars.columns]
    if missing:
        raise TerminalError(
            f"compute_indicators needs columns {list(REQUIRED_COLUMNS)}; missing {missing}"
        )
    size = bars.height
    runs = bars.get_column("symbol").rle()
    if runs.struct.field("value").n_unique() != runs.len():
        raise TerminalError("compute_indicators needs bars sorted by (symbol, ts)")
    ends = np.cumsum(runs.struct.field("len").to_numpy().astype(np.int64))
    starts = ends - runs.struct.field("len").to_numpy()
    columns = {
        name: bars.get_column(name).cast(pl.Float64).to_numpy()
        for name in ("close", "high", "low", "volume")
    }
    flat: dict[str, np.ndarray] = {}
    with np.errstate(all="ignore"):
        for bucket in size_buckets(ends - starts):
            for layout, panels in _bucket_indicators(columns, starts[bucket], ends[bucket]):
                for name, panel in panels.items():
                    if layout.dense and layout.lengths.sum() == size:
                        flat[name] = panel.reshape(-1)
                        continue
                    if name not in flat:
                        flat[name] = allocate((size,))
                        flat[name].fill(np.nan)
                    layout.scatter(panel, flat[name])
        for name in (*OUTPUTS, _BAND_STD):
            flat.setdefault(name, np.empty(0))
        return _frame(bars, flat)
