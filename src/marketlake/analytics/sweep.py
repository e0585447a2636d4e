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

import contextvars
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from marketlake.analytics.blocks import OUTPUTS, BlockState, derive, emit_block
from marketlake.analytics.kernels import bar_range, obv, obv_moves, true_range
from marketlake.analytics.panel import allocate
from marketlake.analytics.smoothing import (
    EMA_K,
    MACD_FIRST,
    SIGNAL_K,
    WILDER_PERIOD,
    WINDOW,
    warm_up,
    wilder_terms,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = ["OUTPUTS", "Panels", "sweep_indicators"]

BLOCK = 32  # bars per block: the block buffers of a few hundred symbols stay in L2
HEAD = MACD_FIRST + 1  # bars computed by the warm-up, before every series is seeded


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
    """SMA(20), STDDEV(20), EMA(20), MACD(12, 26, 9) line and signal, RSI(14), ATR(14), OBV.

    Returns a symbol-major panel per name in :data:`OUTPUTS`, NaN at TA-Lib's warm-up
    positions. ``stddev_20`` is the standard deviation BBANDS uses, which never re-sums
    its window (for STDDEV itself see
    :func:`~marketlake.analytics.kernels.resynced_stddev`).
    """
    symbols, length = panels.close.shape
    out = {name: allocate((symbols, length)) for name in OUTPUTS}
    head = min(HEAD, length)
    close = np.ascontiguousarray(panels.close[:, :head].T)
    tr = true_range(panels.high[:, :head], panels.low[:, :head], panels.bars_close[:, :head])
    state = warm_up(close, tr.T, np.multiply(close, close))
    state["obv"] = obv(panels.volume_close[:, :head], panels.volume[:, :head]).T
    derive(state, 0, out, warm=True)
    if length > head:
        _Sweeper(panels, state).run(out)
    return out


class _Sweeper:
    """Block buffers and the step loop of :func:`sweep_indicators` after the warm-up.

    The MACD signal is stepped one bar behind the three EMAs, stacked with them as a
    fourth row: at bar ``t`` the stack advances EMA 20, 12 and 26 to ``t`` and the signal
    to ``t - 1`` (whose MACD the previous step wrote), so one set of numpy calls serves
    all four.

    Two sets of state buffers alternate: while this thread loads and steps one block, a
    helper thread derives and writes out the indicators of the block before (numpy
    releases the GIL inside its large operations).
    """

    def __init__(self, panels: Panels, warm: dict[str, np.ndarray]):
        symbols = panels.close.shape[0]
        self.panels = panels
        block = BLOCK
        self.states = (BlockState(block, symbols), BlockState(block, symbols))
        first = self.states[0]
        first.emas[0, :3] = warm["emas"][-1]
        first.smooth[0] = warm["smooth"][-1]
        first.sums[0] = warm["sums"][-1]
        first.obv[0] = warm["obv"][-1]
        first.ema_inputs[0, 3] = warm["macd"][-1]
        self._seed = warm["signal"][-1]
        # Inputs: close and close squared from WINDOW bars before the block on; high and
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
        self._k = np.repeat(np.append(EMA_K, [[SIGNAL_K]], axis=0), symbols, axis=1)
        self._inputs = (list(self.terms), list(self.values), list(self.moves))

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

    def _load(self, first: int, rows: int, state: BlockState) -> None:
        """Load bars ``first..first+rows-1`` and derive the step inputs."""
        panels, bars = self.panels, slice(first, first + rows)
        self._load_close(first, first + rows, WINDOW)
        closes = self.values[WINDOW : WINDOW + rows, 0]
        state.ema_inputs[:rows, :3] = closes[:, np.newaxis]
        high, low = self.ranges[0, :rows], self.ranges[1, :rows]
        high[:] = panels.high[:, bars].T
        low[:] = panels.low[:, bars].T
        terms = self.terms[:rows]
        before = self._closes("bars_close", first, rows)
        bar_range(high, low, before[:-1], out=terms[:, 2])
        wilder_terms(self.values[WINDOW - 1 : WINDOW + rows, 0], terms)
        volume = self.volume[:rows]
        volume[:] = panels.volume[:, bars].T
        before = self._closes("volume_close", first, rows)
        obv_moves(before[1:], before[:-1], volume, out=self.moves[:rows])

    def run(self, out: dict[str, np.ndarray]) -> None:
        """Step through bars ``HEAD..`` block by block, writing indicators into ``out``."""
        from concurrent.futures import ThreadPoolExecutor

        length = self.panels.close.shape[1]
        context = contextvars.copy_context()  # the caller's numpy error state
        pending: list[Future[None] | None] = [None, None]
        state, rows = self.states[0], 0
        with ThreadPoolExecutor(max_workers=1) as helper:
            for index, first in enumerate(range(HEAD, length, BLOCK)):
                state, before = self.states[index % 2], state
                waiting = pending[index % 2]
                if waiting is not None:
                    waiting.result()  # the helper is done with this set
                if index:
                    state.carry(before, rows)
                rows = min(BLOCK, length - first)
                self._load(first, rows, state)
                if first == HEAD:  # the signal's first value is its seed, not a step
                    self._steps(state, 0, 1)
                    state.emas[1, 3] = self._seed
                    self._steps(state, 1, rows)
                else:
                    self._steps(state, 0, rows)
                pending[index % 2] = helper.submit(context.run, emit_block, state, first, rows, out)
                self.values[:WINDOW] = self.values[rows : rows + WINDOW]
            for waiting in pending:
                if waiting is not None:
                    waiting.result()
        last = np.subtract(state.ema_inputs[rows, 3], state.emas[rows, 3])
        np.multiply(last, SIGNAL_K, out=last)
        out["macd_signal"][:, length - 1] = np.add(last, state.emas[rows, 3], out=last)

    def _steps(self, state: BlockState, start: int, stop: int) -> None:
        """Advance every series through bars ``start..stop-1`` of the loaded block."""
        subtract, multiply, add, divide = np.subtract, np.multiply, np.add, np.divide
        k = self._k
        keep, divisor = float(WILDER_PERIOD - 1), float(WILDER_PERIOD)
        emas, fast, slow, inputs, macd, smooth, sums, balance = (
            rows[start:] for rows in state.rows
        )
        terms, values, moves = (rows[start:] for rows in self._inputs)
        t4 = np.empty(state.emas.shape[1:])
        t3 = np.empty(state.smooth.shape[1:])
        t2 = np.empty(state.sums.shape[1:])
        steps = zip(
            range(start, stop),
            emas,
            emas[1:],
            inputs,
            fast,
            slow,
            macd,
            smooth,
            smooth[1:],
            terms,
            sums,
            sums[1:],
            values,
            values[WINDOW:],
            balance,
            balance[1:],
            moves,
            strict=False,  # the range stops it; the buffers hold a whole block
        )
        for _, e0, e1, x, f1, s1, m, w0, w1, term, a0, a1, old, new, b0, b1, mv in steps:
            subtract(x, e0, t4)
            multiply(t4, k, t4)
            add(t4, e0, e1)
            subtract(f1, s1, m)
            multiply(w0, keep, t3)
            add(t3, term, t3)
            divide(t3, divisor, w1)
            subtract(a0, old, t2)
            add(t2, new, a1)
            add(b0, mv, b1)
