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
1e-11 in practice); see :mod:`marketlake.analytics.kernels` for how.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from marketlake.analytics.kernels import (
    ZERO_EPSILON,
    ema_steps,
    obv,
    resynced_stddev,
    sma_and_stddev,
    true_range,
    wilder_steps,
)
from marketlake.analytics.panel import Layout, first_valid, size_buckets

if TYPE_CHECKING:
    import polars as pl

INDICATOR_COLUMNS = (
    "sma_20",
    "ema_20",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "atr_14",
    "stddev_20",
    "obv",
)
REQUIRED_COLUMNS = ("symbol", "ts", "high", "low", "close", "volume")

_EMA_K = np.array([[2.0 / 21.0], [2.0 / 13.0], [2.0 / 27.0]])  # EMA 20, MACD fast 12, slow 26
_SIGNAL_K = 2.0 / 10.0


def _seed(x: np.ndarray, first: int, n: int) -> np.ndarray:
    """TA-Lib's seed over time-major rows ``first..first+n-1``: sequential sum divided by n."""
    return np.cumsum(x[first : first + n], axis=0)[-1] / n


def _time_major(panel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(panel.T)


def _symbol_major(panel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(panel.T)


def _moving_averages(close: np.ndarray, out: dict[str, np.ndarray]) -> None:
    """EMA(20) and MACD(12, 26, 9) of a time-major close panel (rows are bars)."""
    length = close.shape[0]
    emas = np.full((length, 3, close.shape[1]), np.nan)
    if length >= 20:
        emas[19, 0] = _seed(close, 0, 20)
        emas[19, 1:] = 0.0
        ema_steps(close, emas, _EMA_K, 20, min(26, length))
    if length >= 26:
        emas[25, 1] = _seed(close, 14, 12)
        emas[25, 2] = _seed(close, 0, 26)
        ema_steps(close, emas, _EMA_K, 26, length)
    out["ema_20"] = _symbol_major(emas[:, 0])
    macd = emas[:, 1] - emas[:, 2]
    signal = np.full(macd.shape, np.nan)
    if length >= 34:
        signal[33] = _seed(macd, 25, 9)
        ema_steps(macd, signal, _SIGNAL_K, 34, length)
    macd[:33] = np.nan
    out["macd"] = _symbol_major(macd)
    out["macd_signal"] = _symbol_major(signal)
    out["macd_hist"] = out["macd"] - out["macd_signal"]


def _wilder_indicators(close: np.ndarray, tr: np.ndarray, out: dict[str, np.ndarray]) -> None:
    """RSI(14) of a time-major close panel and ATR(14) of a time-major true-range panel."""
    length = close.shape[0]
    terms = np.empty((length, 3, close.shape[1]))
    terms[0] = np.nan
    change = np.subtract(close[1:], close[:-1], out=terms[1:, 0])
    np.negative(change, out=terms[1:, 1])
    np.maximum(terms[1:, 1], 0.0, out=terms[1:, 1])
    np.maximum(change, 0.0, out=change)
    terms[:, 2] = tr
    smooth = np.full(terms.shape, np.nan)
    if length >= 15:
        smooth[14] = _seed(terms, 1, 14)
        wilder_steps(terms, smooth, 14, 15, length)
    gain, loss = smooth[:, 0], smooth[:, 1]
    total = gain + loss
    rsi = np.multiply(np.divide(gain, total), 100.0)
    rsi[~(np.abs(total) >= ZERO_EPSILON)] = 0.0  # TA-Lib gives 0, not NaN, after a NaN close
    rsi[:14] = np.nan
    out["rsi_14"] = _symbol_major(rsi)
    out["atr_14"] = _symbol_major(smooth[:, 2])


def _bucket_indicators(
    columns: dict[str, np.ndarray], starts: np.ndarray, ends: np.ndarray
) -> list[tuple[Layout, dict[str, np.ndarray]]]:
    """Indicator panels of one bucket of symbols, each with the layout to scatter it by."""
    close, high, low, volume = (columns[name] for name in ("close", "high", "low", "volume"))
    width = int((ends - starts).max())

    def layout(*inputs: np.ndarray) -> Layout:
        offsets = first_valid(inputs, starts, ends)
        return Layout(starts + offsets, ends - starts - offsets, width)

    on_close = layout(close)
    on_bars = layout(high, low, close)
    on_volume = layout(close, volume)
    close_panel = on_close.gather(close)
    out: dict[str, np.ndarray] = {}
    sma, std = sma_and_stddev(close_panel, 20)
    band = std * 2.0
    out.update(sma_20=sma, bb_middle=sma, bb_upper=sma + band, bb_lower=sma - band)
    out["stddev_20"] = resynced_stddev(close_panel, std, 20)
    close_tm = _time_major(close_panel)
    _moving_averages(close_tm, out)
    tr = true_range(on_bars.gather(high), on_bars.gather(low), on_bars.gather(close))
    _wilder_indicators(close_tm, _time_major(tr), out)
    on_volume_out = {"obv": obv(on_volume.gather(close), on_volume.gather(volume))}
    atr = {"atr_14": out.pop("atr_14")}
    return [(on_close, out), (on_bars, atr), (on_volume, on_volume_out)]


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
                        flat[name] = np.full(size, np.nan)
                    layout.scatter(panel, flat[name])
    for name in INDICATOR_COLUMNS:
        flat.setdefault(name, np.empty(0))
    return bars.select("symbol", "ts").with_columns(
        pl.Series(name, flat[name], nan_to_null=True) for name in INDICATOR_COLUMNS
    )
