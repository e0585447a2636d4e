"""One pass over time that computes every indicator of a bucket of symbols.

The sweep reads symbol-major panels (one row per symbol) a block of bars at a time,
transposes each block into small time-major buffers, steps every series through the
block (see :mod:`marketlake.analytics.smoothing` for the arithmetic), derives the
indicators of the block and writes them back, transposed, into symbol-major outputs.
The buffers stay in the CPU cache, so each input and output crosses memory once, and the
per-step numpy calls run on rows as wide as the number of symbols.

Series stepped together: EMA 20, 12 and 26 of close; the MACD signal; Wilder smoothing
of gains, losses and true ranges; window sums of close and close squared; OBV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketlake.analytics.kernels import ZERO_EPSILON, bar_range, obv, obv_moves, true_range
from marketlake.analytics.smoothing import (
    EMA_K,
    MACD_FIRST,
    SIGNAL_K,
    WILDER_PERIOD,
    WINDOW,
    warm_up,
    wilder_terms,
)

OUTPUTS = (
    "sma_20",
    "stddev_20",
    "bb_upper",
    "bb_lower",
    "ema_20",
    "macd",
    "macd_signal",
    "macd_hist",
    "rsi_14",
    "atr_14",
    "obv",
)
BLOCK = 64  # bars per block
HEAD = MACD_FIRST + 1  # bars computed by the warm-up, before every series is seeded
_BAND_WIDTH = 2.0


@dataclass(frozen=True)
class Panels:
    """Symbol-major inputs of one bucket, all of the same shape.

    ``close`` feeds SMA, STDDEV, BBANDS, EMA, MACD and RSI. ATR reads ``high``, ``low``
    and ``bars_close`` and OBV reads ``volume`` and ``volume_close``: the same bars as
    ``close`` unless a symbol's first usable bar differs between those inputs, in which
    case they are panels of their own (pass ``close`` itself when they are not).
    """

    close: np.ndarray
    high: np.ndarray
    low: np.ndarray
    bars_close: np.ndarray
    volume: np.ndarray
    volume_close: np.ndarray


def sweep_indicators(panels: Panels) -> dict[str, np.ndarray]:
    """SMA(20), STDDEV(20), BBANDS(20, 2, 2), EMA(20), MACD(12, 26, 9), RSI(14), ATR(14), OBV.

    Returns a symbol-major panel per name in :data:`OUTPUTS`, NaN at TA-Lib's warm-up
    positions (STDDEV before TA-Lib's periodic re-sum; see
    :func:`~marketlake.analytics.kernels.resynced_stddev`).
    """
    symbols, length = panels.close.shape
    out = {name: np.empty((symbols, length)) for name in OUTPUTS}
    head = min(HEAD, length)
    close = np.ascontiguousarray(panels.close[:, :head].T)
    tr = true_range(panels.high[:, :head], panels.low[:, :head], panels.bars_close[:, :head])
    state = warm_up(close, tr.T, np.multiply(close, close))
    state["obv"] = obv(panels.volume_close[:, :head], panels.volume[:, :head]).T
    _derive(state, 0, out, warm=True)
    if length > head:
        _Sweeper(panels, state).run(out)
    return out


def _derive(
    series: dict[str, np.ndarray], first: int, out: dict[str, np.ndarray], *, warm: bool
) -> None:
    """Indicators of the time-major ``series`` of bars ``first..``, written into ``out``."""
    emas, macd, signal = series["emas"], series["macd"], series["signal"]
    smooth, sums = series["smooth"], series["sums"]
    cols = slice(first, first + len(macd))

    def emit(name: str, values: np.ndarray) -> None:
        out[name][:, cols] = values.T

    emit("ema_20", emas[:, 0])
    emit("macd", macd)
    emit("macd_signal", signal)
    emit("atr_14", smooth[:, 2])
    emit("obv", series["obv"])
    work = np.subtract(macd, signal)
    emit("macd_hist", work)
    total = np.add(smooth[:, 0], smooth[:, 1])
    np.divide(smooth[:, 0], total, out=work)
    np.multiply(work, 100.0, out=work)
    if warm or not total.min() >= ZERO_EPSILON:
        np.copyto(work, 0.0, where=~(total >= ZERO_EPSILON))  # TA-Lib's 0, also after NaN
    if warm:
        work[:WILDER_PERIOD] = np.nan
    emit("rsi_14", work)
    mean = np.divide(sums[:, 0], WINDOW)
    variance = np.divide(sums[:, 1], WINDOW)
    np.multiply(mean, mean, out=total)
    np.subtract(variance, total, out=variance)
    if warm or not variance.min() >= ZERO_EPSILON:
        np.copyto(variance, 0.0, where=variance < ZERO_EPSILON)
    std = np.sqrt(variance, out=variance)
    emit("sma_20", mean)
    emit("stddev_20", std)
    np.multiply(std, _BAND_WIDTH, out=total)
    emit("bb_upper", np.add(mean, total, out=work))
    emit("bb_lower", np.subtract(mean, total, out=work))


class _Sweeper:
    """Block buffers and the step loop of :func:`sweep_indicators` after the warm-up."""

    def __init__(self, panels: Panels, warm: dict[str, np.ndarray]):
        symbols = panels.close.shape[0]
        self.panels = panels
        block = BLOCK
        # Row 0 of each state buffer holds the state before the block.
        self.emas = np.empty((block + 1, 3, symbols))
        self.signal = np.empty((block + 1, symbols))
        self.smooth = np.empty((block + 1, 3, symbols))
        self.sums = np.empty((block + 1, 2, symbols))
        self.obv = np.empty((block + 1, symbols))
        self.macd = np.empty((block, symbols))
        for name in ("emas", "signal", "smooth", "sums", "obv"):
            getattr(self, name)[0] = warm[name][-1]
        # Inputs: close and close squared from WINDOW bars before the block on, high and
        # low, volume, Wilder terms and OBV moves; closes of other layouts from the bar
        # before the block on.
        self.values = np.empty((WINDOW + block, 2, symbols))
        self.ranges = np.empty((2, block, symbols))
        self.volume = np.empty((block, symbols))
        self.terms = np.empty((block, 3, symbols))
        self.moves = np.empty((block, symbols))
        self.others = {
            name: np.empty((block + 1, symbols))
            for name in ("bars_close", "volume_close")
            if getattr(panels, name) is not panels.close
        }
        self._load_close(HEAD - WINDOW, HEAD, 0)
        self._k = np.repeat(EMA_K, symbols, axis=1)

    def _load_close(self, begin: int, end: int, row: int) -> None:
        """Put close and close squared of bars ``begin..end-1`` at ``values[row:]``."""
        rows = self.values[row : row + end - begin]
        rows[:, 0] = self.panels.close[:, begin:end].T
        np.multiply(rows[:, 0], rows[:, 0], out=rows[:, 1])

    def _closes(self, name: str, first: int, rows: int) -> np.ndarray:
        """Time-major closes of bars ``first-1..first+rows-1`` of the panel ``name``."""
        if name not in self.others:
            return self.values[WINDOW - 1 : WINDOW + rows, 0]
        buffer = self.others[name][: rows + 1]
        buffer[:] = getattr(self.panels, name)[:, first - 1 : first + rows].T
        return buffer

    def _load(self, first: int, rows: int) -> None:
        """Load bars ``first..first+rows-1`` and derive the Wilder terms and OBV moves."""
        panels, bars = self.panels, slice(first, first + rows)
        self._load_close(first, first + rows, WINDOW)
        high, low = self.ranges[0, :rows], self.ranges[1, :rows]
        high[:] = panels.high[:, bars].T
        low[:] = panels.low[:, bars].T
        terms = self.terms[:rows]
        closes = self._closes("bars_close", first, rows)
        bar_range(high, low, closes[:-1], out=terms[:, 2])
        wilder_terms(self.values[WINDOW - 1 : WINDOW + rows, 0], terms)
        volume = self.volume[:rows]
        volume[:] = panels.volume[:, bars].T
        closes = self._closes("volume_close", first, rows)
        obv_moves(closes[1:], closes[:-1], volume, out=self.moves[:rows])

    def run(self, out: dict[str, np.ndarray]) -> None:
        """Step through bars ``HEAD..`` block by block, writing indicators into ``out``."""
        length = self.panels.close.shape[1]
        for first in range(HEAD, length, BLOCK):
            rows = min(BLOCK, length - first)
            self._load(first, rows)
            self._steps(rows)
            series = {
                "emas": self.emas[1 : rows + 1],
                "macd": self.macd[:rows],
                "signal": self.signal[1 : rows + 1],
                "smooth": self.smooth[1 : rows + 1],
                "sums": self.sums[1 : rows + 1],
                "obv": self.obv[1 : rows + 1],
            }
            _derive(series, first, out, warm=False)
            for buffer in (self.emas, self.signal, self.smooth, self.sums, self.obv):
                buffer[0] = buffer[rows]
            self.values[:WINDOW] = self.values[rows : rows + WINDOW]

    def _steps(self, rows: int) -> None:
        """Advance every series through the first ``rows`` bars of the loaded block."""
        subtract, multiply, add, divide = np.subtract, np.multiply, np.add, np.divide
        k, signal_k = self._k, SIGNAL_K
        keep, divisor = float(WILDER_PERIOD - 1), float(WILDER_PERIOD)
        emas, signal, smooth = list(self.emas), list(self.signal), list(self.smooth)
        sums, balance, values = list(self.sums), list(self.obv), list(self.values)
        t3 = np.empty(self.emas.shape[1:])
        t2 = np.empty(self.sums.shape[1:])
        t1 = np.empty(self.signal.shape[1:])
        steps = zip(
            range(rows),
            emas,
            emas[1:],
            self.values[WINDOW:, 0],
            self.emas[1:, 1],
            self.emas[1:, 2],
            self.macd,
            signal,
            signal[1:],
            smooth,
            smooth[1:],
            self.terms,
            sums,
            sums[1:],
            values,
            values[WINDOW:],
            balance,
            balance[1:],
            self.moves,
        )
        for _, e0, e1, x, f1, s1, m, g0, g1, w0, w1, term, a0, a1, old, new, b0, b1, mv in steps:
            subtract(x, e0, t3)
            multiply(t3, k, t3)
            add(t3, e0, e1)
            subtract(f1, s1, m)
            subtract(m, g0, t1)
            multiply(t1, signal_k, t1)
            add(t1, g0, g1)
            multiply(w0, keep, t3)
            add(t3, term, t3)
            divide(t3, divisor, w1)
            subtract(a0, old, t2)
            add(t2, new, a1)
            add(b0, mv, b1)
