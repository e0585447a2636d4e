"""TA-Lib's running sums and recursions, stepped through time on time-major arrays.

A recursion ``y[t] = f(y[t-1], x[t])`` cannot be vectorised along time without changing
its rounding, so it steps through time and is vectorised across symbols instead: arrays
here are *time-major* (``(bars, ..., symbols)``), and each step runs a few numpy
operations on whole rows. Several series of the same kind share one step by being stacked
along the middle axis.

Each step uses TA-Lib's own formulas, operation for operation:

- EMA ``(x - prev) * k + prev`` with ``k = 2 / (n + 1)``, seeded with the mean of the
  first ``n`` inputs;
- Wilder smoothing ``(prev * (n - 1) + x) / n``, seeded the same way;
- window sums ``(total - x[t-n]) + x[t]``, seeded with the sequential sum of the first
  ``n`` inputs (TA-Lib adds the new value, reads the total, then subtracts the oldest).

Seeds are sequential sums divided by ``n``, as in TA-Lib. The results are therefore
TA-Lib's to the last bit or so, which matters where two of them are subtracted (MACD
crosses zero). The functions here compute the warm-up of each series over the first bars
and the steps that follow; :mod:`marketlake.analytics.sweep` drives them over the rest.
"""

from __future__ import annotations

import numpy as np

EMA_PERIODS = (20, 12, 26)  # EMA(20), MACD fast, MACD slow
SIGNAL_PERIOD = 9
WILDER_PERIOD = 14
WINDOW = 20  # SMA, STDDEV and BBANDS
EMA_K = np.array([[2.0 / (n + 1)] for n in EMA_PERIODS])
SIGNAL_K = 2.0 / (SIGNAL_PERIOD + 1)
MACD_FIRST = EMA_PERIODS[2] + SIGNAL_PERIOD - 2  # first bar with a MACD value (33)


def seed_mean(x: np.ndarray, first: int, n: int) -> np.ndarray:
    """TA-Lib's seed: the sequential sum of time-major rows ``first..first+n-1``, over ``n``."""
    return np.cumsum(x[first : first + n], axis=0)[-1] / n


def ema_steps(x: np.ndarray, y: np.ndarray, k: np.ndarray | float, start: int, stop: int) -> None:
    """Fill rows ``start..stop-1`` of time-major ``y`` with ``(x[t] - y[t-1]) * k + y[t-1]``.

    ``x[t]`` broadcasts against ``y[t]`` (one input row can feed several stacked EMAs).
    """
    tmp = np.empty(y.shape[1:])
    subtract, multiply, add = np.subtract, np.multiply, np.add
    rows = list(y[max(start - 1, 0) : stop])
    for prev, row, new in zip(rows[:-1], rows[1:], x[start:stop], strict=True):
        subtract(new, prev, tmp)
        multiply(tmp, k, tmp)
        add(tmp, prev, row)


def wilder_steps(x: np.ndarray, y: np.ndarray, n: int, start: int, stop: int) -> None:
    """Fill rows ``start..stop-1`` of time-major ``y`` with ``(y[t-1] * (n-1) + x[t]) / n``."""
    tmp = np.empty(y.shape[1:])
    keep, divisor = float(n - 1), float(n)
    multiply, add, divide = np.multiply, np.add, np.divide
    rows = list(y[max(start - 1, 0) : stop])
    for prev, row, new in zip(rows[:-1], rows[1:], x[start:stop], strict=True):
        multiply(prev, keep, tmp)
        add(tmp, new, tmp)
        divide(tmp, divisor, row)


def sum_steps(x: np.ndarray, y: np.ndarray, n: int, start: int, stop: int) -> None:
    """Fill rows ``start..stop-1`` of time-major ``y`` with ``(y[t-1] - x[t-n]) + x[t]``."""
    tmp = np.empty(y.shape[1:])
    subtract, add = np.subtract, np.add
    rows = list(y[max(start - 1, 0) : stop])
    pairs = zip(x[start - n : stop - n], x[start:stop], strict=True)
    for prev, row, (old, new) in zip(rows[:-1], rows[1:], pairs, strict=True):
        subtract(prev, old, tmp)
        add(tmp, new, row)


def wilder_terms(close: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Gains and losses of time-major ``close`` into ``out[:, 0]`` and ``out[:, 1]``.

    ``close`` has one more row than ``out`` (the bar before the first one). The loss
    ``gain - change`` equals TA-Lib's ``-change`` (or 0) exactly.
    """
    gain, loss = out[:, 0], out[:, 1]
    change = np.subtract(close[1:], close[:-1], out=loss)
    np.maximum(change, 0.0, out=gain)
    np.subtract(gain, change, out=loss)
    return out


def warm_up(
    close: np.ndarray, true_range: np.ndarray, squares: np.ndarray
) -> dict[str, np.ndarray]:
    """Every series over the first bars of time-major panels, warm-up and seeds included.

    Returns time-major ``emas`` (EMA 20, 12, 26), ``macd``, ``signal``, ``smooth`` (Wilder
    gains, losses, true ranges) and ``sums`` (window sums of close and close squared), NaN
    wherever TA-Lib has no value yet. ``squares`` is ``close * close``.
    """
    length, symbols = close.shape
    emas = np.full((length, len(EMA_PERIODS), symbols), np.nan)
    if length >= 20:
        emas[19, 0] = seed_mean(close, 0, 20)
        ema_steps(close, emas[:, :1], EMA_K[:1], 20, length)
    if length >= 26:
        emas[25, 1] = seed_mean(close, 14, 12)
        emas[25, 2] = seed_mean(close, 0, 26)
        ema_steps(close, emas[:, 1:], EMA_K[1:], 26, length)
    macd = np.subtract(emas[:, 1], emas[:, 2])
    signal = np.full(macd.shape, np.nan)
    if length > MACD_FIRST:
        signal[MACD_FIRST] = seed_mean(macd, MACD_FIRST - SIGNAL_PERIOD + 1, SIGNAL_PERIOD)
        ema_steps(macd, signal, SIGNAL_K, MACD_FIRST + 1, length)
    macd[:MACD_FIRST] = np.nan
    terms = np.full((length, 3, symbols), np.nan)
    wilder_terms(close, terms[1:])
    terms[:, 2] = true_range
    smooth = np.full(terms.shape, np.nan)
    if length > WILDER_PERIOD:
        smooth[WILDER_PERIOD] = seed_mean(terms, 1, WILDER_PERIOD)
        wilder_steps(terms, smooth, WILDER_PERIOD, WILDER_PERIOD + 1, length)
    values = np.stack((close, squares), axis=1)
    sums = np.full(values.shape, np.nan)
    if length >= WINDOW:
        sums[WINDOW - 1] = np.cumsum(values[:WINDOW], axis=0)[-1]
        sum_steps(values, sums, WINDOW, WINDOW, length)
    return {"emas": emas, "macd": macd, "signal": signal, "smooth": smooth, "sums": sums}
