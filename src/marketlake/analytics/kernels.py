"""Element-wise and per-panel kernels that reproduce TA-Lib's arithmetic.

A *panel* is a 2-D float64 array with one row per symbol, each row starting at the
symbol's first usable bar (see :mod:`marketlake.analytics.panel`) and padded at the end
with NaN. The running sums and recursions themselves are stepped through time by
:mod:`marketlake.analytics.smoothing` and :mod:`marketlake.analytics.sweep`; the kernels
here are the pieces that need no stepping (true range, OBV increments), OBV over a few
bars, and STDDEV's behaviour around NaN input.

NaN input propagates as in TA-Lib: a NaN entering a running sum or a recursion poisons
every later value of it, except where TA-Lib itself recovers (STDDEV at its next re-sum,
RSI which returns 0).
"""

from __future__ import annotations

import numpy as np

ZERO_EPSILON = 1e-8  # TA-Lib's TA_IS_ZERO / TA_IS_ZERO_OR_NEG threshold
VAR_RESYNC = 640  # TA-Lib's VAR/STDDEV re-sum their window every this many outputs


def resynced_stddev(close: np.ndarray, std: np.ndarray, n: int) -> np.ndarray:
    """STDDEV as TA-Lib returns it around NaN input.

    TA-Lib's VAR re-sums its window every :data:`VAR_RESYNC` outputs, so a NaN close
    poisons STDDEV only until the next re-sum whose window is clean (BBANDS, whose running
    sums are never re-summed, stays NaN). ``std`` is the never-re-summed standard deviation.
    """
    if close.shape[1] < n or not np.isnan(close.min()):
        return std
    missing = np.isnan(close)
    rows = np.flatnonzero(missing.any(axis=1))
    out = std.copy()
    length = close.shape[1]
    bars = np.arange(n - 1, length)
    outputs = bars - (n - 1)
    resync = np.where(
        outputs >= VAR_RESYNC - 1,
        (outputs - (VAR_RESYNC - 1)) // VAR_RESYNC * VAR_RESYNC + VAR_RESYNC - 1,
        0,
    )
    for row in rows:
        seen = np.concatenate(([0], np.cumsum(missing[row])))
        poisoned = seen[bars + 1] - seen[resync] > 0
        values = out[row, n - 1 :]
        clean = np.sqrt(np.maximum(_window_variance(close[row], bars, n), 0.0))
        values[:] = np.where(poisoned, np.nan, np.where(np.isnan(values), clean, values))
    return out


def _window_variance(x: np.ndarray, bars: np.ndarray, n: int) -> np.ndarray:
    """Population variance of the window ending at each of ``bars`` (NaN where it has NaN)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, n)[bars - (n - 1)]
    mean = windows.mean(axis=1)
    variance = (windows * windows).mean(axis=1) - mean * mean
    return np.where(variance < ZERO_EPSILON, 0.0, variance)


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """TA-Lib's TRANGE of a panel from the second bar on (column 0 is NaN)."""
    tr = np.empty(close.shape)
    tr[:, 0] = np.nan
    if close.shape[1] > 1:
        bar_range(high[:, 1:], low[:, 1:], close[:, :-1], out=tr[:, 1:])
    return tr


def bar_range(
    high: np.ndarray, low: np.ndarray, prev_close: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """TA-Lib's true range of each bar, element by element, into ``out``.

    TA-Lib starts from ``high - low`` and replaces it by ``|prev close - high|`` or
    ``|prev close - low|`` when that is greater, so a NaN previous close is ignored while a
    NaN high or low gives NaN. When every high is at least its low and nothing is NaN, that
    is ``max(high, prev close) - min(low, prev close)``, bit for bit (rounding is monotonic),
    which costs fewer passes.
    """
    spread = np.subtract(high, low, out=out)
    if spread.size and spread.min() >= 0.0:
        upper = np.maximum(high, prev_close)
        np.minimum(low, prev_close, out=out)
        np.subtract(upper, out, out=out)
        if out.min() >= 0.0:
            return out
        np.subtract(high, low, out=out)
    up = np.abs(np.subtract(prev_close, high))
    down = np.abs(np.subtract(prev_close, low))
    for other in (up, down):
        np.copyto(out, other, where=other > out)
    return out


def obv(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """TA-Lib's OBV of a panel: the first volume, then plus or minus each bar's volume as
    the close rises or falls."""
    stream = np.empty(close.shape)
    stream[:, 0] = volume[:, 0]
    if close.shape[1] > 1:
        obv_moves(close[:, 1:], close[:, :-1], volume[:, 1:], out=stream[:, 1:])
    return np.cumsum(stream, axis=1, out=stream)


def obv_moves(
    close: np.ndarray, prev_close: np.ndarray, volume: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """OBV's change at each bar, element by element: +volume, -volume or 0 (also for NaN)."""
    sign = np.greater(close, prev_close).view(np.int8) - np.less(close, prev_close).view(np.int8)
    moves = np.multiply(sign, volume, out=out)
    if moves.size and np.isnan(moves.min()):  # 0 x inf or 0 x NaN volume: TA-Lib adds nothing
        moves[sign == 0] = 0.0
    return moves
