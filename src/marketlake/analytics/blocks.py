"""Per-block buffers of the indicator sweep and the indicators derived from them.

:mod:`marketlake.analytics.sweep` steps every series through a block of bars in a
:class:`BlockState`; :func:`derive` turns the stepped series of a block (or of the
warm-up) into indicator values and writes them, transposed, into symbol-major outputs.
"""

from __future__ import annotations

import numpy as np

from marketlake.analytics.kernels import ZERO_EPSILON
from marketlake.analytics.smoothing import WILDER_PERIOD, WINDOW

OUTPUTS = ("sma_20", "stddev_20", "ema_20", "macd", "macd_signal", "rsi_14", "atr_14", "obv")


class BlockState:
    """One set of per-block state buffers; row 0 holds the state before the block.

    ``emas`` rows are EMA 20, 12, 26 at a bar and the MACD signal at the bar before;
    ``ema_inputs`` rows are the close thrice and the MACD of the bar before (the steps
    write each bar's MACD into the next row).
    """

    def __init__(self, block: int, symbols: int):
        self.emas = np.empty((block + 1, 4, symbols))
        self.smooth = np.empty((block + 1, 3, symbols))
        self.sums = np.empty((block + 1, 2, symbols))
        self.obv = np.empty((block + 1, symbols))
        self.ema_inputs = np.empty((block + 1, 4, symbols))
        self.rows = (
            list(self.emas),
            list(self.emas[1:, 1]),
            list(self.emas[1:, 2]),
            list(self.ema_inputs),
            list(self.ema_inputs[1:, 3]),
            list(self.smooth),
            list(self.sums),
            list(self.obv),
        )

    def carry(self, before: BlockState, rows: int) -> None:
        """Start from the state after the first ``rows`` bars of ``before``."""
        for mine, theirs in zip(self.buffers(), before.buffers(), strict=True):
            mine[0] = theirs[rows]
        self.ema_inputs[0, 3] = before.ema_inputs[rows, 3]

    def buffers(self) -> tuple[np.ndarray, ...]:
        """The state buffers carried from block to block."""
        return self.emas, self.smooth, self.sums, self.obv


def derive(
    series: dict[str, np.ndarray], first: int, out: dict[str, np.ndarray], *, warm: bool
) -> None:
    """Indicators of the time-major ``series`` of bars ``first..``, written into ``out``."""
    emas, macd = series["emas"], series["macd"]
    smooth, sums = series["smooth"], series["sums"]
    cols = slice(first, first + len(macd))

    def emit(name: str, values: np.ndarray) -> None:
        out[name][:, cols] = values.T

    emit("ema_20", emas[:, 0])
    emit("macd", macd)
    if "signal" in series:
        emit("macd_signal", series["signal"])
    emit("atr_14", smooth[:, 2])
    emit("obv", series["obv"])
    total = np.add(smooth[:, 0], smooth[:, 1])
    work = np.divide(smooth[:, 0], total)
    np.multiply(work, 100.0, out=work)
    if warm or not total.min() >= ZERO_EPSILON:
        np.copyto(work, 0.0, where=~(total >= ZERO_EPSILON))  # TA-Lib's 0, also after NaN
    if warm:
        work[:WILDER_PERIOD] = np.nan
    emit("rsi_14", work)
    np.divide(sums[:, 0], WINDOW, out=work)
    variance = np.divide(sums[:, 1], WINDOW)
    np.multiply(work, work, out=total)
    np.subtract(variance, total, out=variance)
    if warm or not variance.min() >= ZERO_EPSILON:
        np.copyto(variance, 0.0, where=variance < ZERO_EPSILON)
    emit("sma_20", work)
    emit("stddev_20", np.sqrt(variance, out=variance))


def emit_block(state: BlockState, first: int, rows: int, out: dict[str, np.ndarray]) -> None:
    """Write the indicators of a stepped block (bars ``first..first+rows-1``) into ``out``."""
    emas = state.emas
    out["macd_signal"][:, first - 1 : first - 1 + rows] = emas[1 : rows + 1, 3].T
    series = {
        "emas": emas[1 : rows + 1],
        "macd": state.ema_inputs[1 : rows + 1, 3],
        "smooth": state.smooth[1 : rows + 1],
        "sums": state.sums[1 : rows + 1],
        "obv": state.obv[1 : rows + 1],
    }
    derive(series, first, out, warm=False)
