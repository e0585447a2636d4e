"""Array kernels that reproduce TA-Lib's arithmetic, operation for operation.

Every kernel works on a *panel*: a 2-D float64 array with one row per symbol, each row
starting at the symbol's first usable bar (see :mod:`marketlake.analytics.panel`) and padded
at the end. Outputs have the panel's shape, with NaN at TA-Lib's warm-up positions.

TA-Lib keeps running sums (SMA, variance, OBV) and first-order recursions (EMA, Wilder
smoothing). The kernels perform the same floating-point operations in the same order:

- running sums are one sequential ``cumsum`` over the interleaved stream
  ``x0 .. x[n-1], -x0, x[n], -x1, x[n+1], ...`` (TA-Lib adds the new value, reads the
  total, then subtracts the trailing value);
- recursions step through time with numpy operations across all symbols at once, on a
  time-major copy, using TA-Lib's formulas ``(x - prev) * k + prev`` (EMA) and
  ``(prev * (n - 1) + x) / n`` (Wilder).

The results agree with TA-Lib's to about 1e-11 relative or better (TA-Lib's own build may
contract or reorder some operations, and its VAR re-sums its window every 640 outputs), and
NaN input propagates as in TA-Lib: a NaN entering a running sum or a recursion poisons every
later value of it, except where TA-Lib itself recovers (STDDEV at its next re-sum, RSI which
returns 0).
"""

from __future__ import annotations

import numpy as np

ZERO_EPSILON = 1e-8  # TA-Lib's TA_IS_ZERO / TA_IS_ZERO_OR_NEG threshold
VAR_RESYNC = 640  # TA-Lib's VAR/STDDEV re-sum their window every this many outputs


def window_stream(x: np.ndarray, n: int, out: np.ndarray) -> np.ndarray:
    """Write ``x0 .. x[n-1], -x0, x[n], -x1, x[n+1], ...`` (along the last axis) into ``out``.

    A sequential ``cumsum`` of this stream performs TA-Lib's running-sum arithmetic: its
    view ``[..., n - 1 :: 2]`` holds the window sums, column ``j`` ending at bar ``j+n-1``.
    ``out`` has ``2 * T - n`` columns; the caller checks that ``x`` has at least ``n``.
    """
    steps = x.shape[-1] - n
    out[..., :n] = x[..., :n]
    np.negative(x[..., :steps], out=out[..., n::2])
    out[..., n + 1 :: 2] = x[..., n:]
    return out


def sma_and_stddev(close: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """SMA(close, n) and STDDEV(close, n, 1) (population), as BBANDS computes them."""
    rows, length = close.shape
    mean = np.empty((rows, length))
    std = np.empty((rows, length))
    mean[:, : n - 1] = np.nan
    std[:, : n - 1] = np.nan
    if length < n:
        return mean, std
    stream = np.empty((2, rows, 2 * length - n))
    values, squares = window_stream(close, n, stream[0]), stream[1]
    np.multiply(values, values, out=squares)
    np.negative(squares[:, n::2], out=squares[:, n::2])  # TA-Lib subtracts the trailing x * x
    sums = np.cumsum(stream, axis=-1, out=stream)[..., n - 1 :: 2]
    np.divide(sums[0], n, out=mean[:, n - 1 :])
    variance = np.divide(sums[1], n)
    square = np.multiply(mean[:, n - 1 :], mean[:, n - 1 :])
    np.subtract(variance, square, out=variance)
    np.copyto(variance, 0.0, where=variance < ZERO_EPSILON)
    np.sqrt(variance, out=std[:, n - 1 :])
    return mean, std


def resynced_stddev(close: np.ndarray, std: np.ndarray, n: int) -> np.ndarray:
    """STDDEV as TA-Lib returns it around NaN input.

    TA-Lib's VAR re-sums its window every :data:`VAR_RESYNC` outputs, so a NaN close
    poisons STDDEV only until the next re-sum whose window is clean (BBANDS, whose running
    sums are never re-summed, stays NaN). ``std`` is the never-re-summed standard deviation.
    """
    missing = np.isnan(close)
    rows = np.flatnonzero(missing.any(axis=1))
    if len(rows) == 0 or close.shape[1] < n:
        return std
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
    NaN high or low gives NaN. Without NaN that is the plain maximum of the three.
    """
    greatest = np.subtract(high, low, out=out)
    up = np.subtract(prev_close, high)
    down = np.subtract(prev_close, low)
    np.abs(up, out=up)
    np.abs(down, out=down)
    np.maximum(greatest, up, out=greatest)
    np.maximum(greatest, down, out=greatest)
    if greatest.size and not greatest.min() >= 0.0:  # NaN somewhere
        cells = np.nonzero(np.isnan(greatest))
        exact = high[cells] - low[cells]
        for other in (up[cells], down[cells]):
            np.copyto(exact, other, where=other > exact)
        greatest[cells] = exact
    return greatest


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
    if not np.isfinite(volume).all():
        moves[sign == 0] = 0.0
    return moves
