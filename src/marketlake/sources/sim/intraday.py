"""A session of ticks laid out so that they aggregate to the simulator's daily bar.

The live tick simulator streams what the batch simulator (:mod:`.model`) says happened: for
each symbol and session, the first tick trades at the day's open, the last at its close, one
tick at the high and one at the low, every other tick in between, and the sizes add up to the
day's volume. So a user who streams a day and runs the batch for it sees one market.

:func:`plan_session` fixes a session's layout from one random stream of ``(seed, session)``;
the session is cut into slots of equal length (a minute, or less for busy streams so that a
slot holds some ten thousand ticks), and the plan says how many ticks each symbol has in each
slot (Poisson, busier at the open and the close), the shares traded in each slot, and the
price at the last tick of each slot with ticks (a Brownian bridge from the open to the close,
stretched so that its extremes are the day's high and low). :meth:`SessionPlan.slot` then
draws one slot's ticks from a stream of ``(seed, session, slot)`` (times, a bridge between
the slot's end prices, sizes), so a slot's ticks do not depend on where a stream started.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketlake.sources.sim.model import _price as round_prices

MINUTE_US = 60_000_000
_SLOT_TICKS = 10_000  # ticks a slot holds at most on average, when slots are shorter than 1 min
_PLAN_CELLS = 4_000_000  # symbols x slots of one session at most
_VOLUME_SHARE = 0.9  # a symbol has at most this share of its daily volume in ticks


def activity(x: np.ndarray) -> np.ndarray:
    """U-shaped intraday factor (mean 1 over the session): busy at the open and the close."""
    return 0.6 * (1.0 + 2.0 * (2.0 * x - 1.0) ** 2)


def _rng(*words: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([w & 0xFFFFFFFFFFFFFFFF for w in words]))


@dataclass(frozen=True)
class DailyBar:
    """One session's bar of every symbol (arrays indexed by symbol)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


@dataclass
class SessionPlan:
    """The layout of one session's ticks; see the module documentation."""

    seed: int
    session: int  # the session's number (days since the epoch)
    open_us: int
    close_us: int
    slot_us: int
    counts: np.ndarray  # (symbols, slots): ticks in each slot
    volumes: np.ndarray  # (symbols, slots): shares traded in each slot
    before: np.ndarray  # (symbols, slots): log price before the slot's first tick
    after: np.ndarray  # (symbols, slots): log price at the slot's last tick
    first: np.ndarray  # (symbols,): the first slot with ticks
    low: np.ndarray  # (symbols,): log of the day's low
    high: np.ndarray  # (symbols,): log of the day's high
    noise: np.ndarray  # (symbols,): log-price noise per tick inside a slot

    @property
    def slots(self) -> int:
        """Slots in the session (the last one may be shorter)."""
        return int(self.counts.shape[1])

    def slot(self, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The ticks of slot ``m`` in time order: symbol index, event time (µs), price and
        size."""
        rng = _rng(self.seed, self.session, self.slot_us, m)
        start = self.open_us + m * self.slot_us
        length = min(self.slot_us, self.close_us - start)
        counts = self.counts[:, m]
        owner = np.repeat(np.arange(len(counts)), counts)
        drawn = rng.integers(0, length, len(owner)) + owner * length
        drawn.sort()  # in time order within each symbol (symbols stay grouped)
        times = start + drawn - owner * length
        prices = np.empty(len(owner))
        sizes = np.empty(len(owner))
        edges = np.concatenate([[0], np.cumsum(counts)])
        for s in np.flatnonzero(counts):
            lo, hi = int(edges[s]), int(edges[s + 1])
            prices[lo:hi] = self._bridge(int(s), m, hi - lo, rng)
            sizes[lo:hi] = _split(int(self.volumes[s, m]), hi - lo, rng)
        order = np.argsort(times, kind="stable")
        return owner[order], times[order], prices[order], sizes[order]

    def _bridge(self, s: int, m: int, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` prices from the value before slot ``m`` to the value at its last tick;
        the session's first tick is the open itself."""
        opening = m == self.first[s]
        steps = np.arange(count) + (0 if opening else 1)
        span = max(int(steps[-1]), 1)
        walk = np.concatenate([[0.0], np.cumsum(rng.standard_normal(span))])
        frac = steps / span
        begin, end = self.before[s, m], self.after[s, m]
        path = begin + frac * (end - begin) + self.noise[s] * (walk[steps] - frac * walk[-1])
        path[-1] = end
        if opening:
            path[0] = begin
        return round_prices(np.exp(np.clip(path, self.low[s], self.high[s])))


def _split(volume: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` sizes adding up to ``volume`` (each at least 1 when there is enough), in
    log-normal shares."""
    floor = 1 if volume >= count else 0
    return floor + _allocate(volume - floor * count, rng.lognormal(0.0, 1.0, count))


def _allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Whole numbers in proportion to ``weights`` adding up to ``total``: rounded down, the
    remainder going to the largest fractions."""
    exact = total * (weights / weights.sum())
    parts = np.floor(exact)
    short = total - int(parts.sum())
    if short > 0:
        parts[np.argpartition(parts - exact, short - 1)[:short]] += 1.0
    return parts


def slot_length(rate: float, symbols: int, session_us: int = 23_400_000_000) -> int:
    """The slot length (µs) for ``symbols`` symbols at ``rate`` ticks per event-second: a
    minute, or shorter so that a slot holds about ``_SLOT_TICKS`` ticks, but never so short
    that a session's plan exceeds ``_PLAN_CELLS`` cells (nor under a second)."""
    wanted = int(_SLOT_TICKS / max(rate, 1e-9) * 1e6)
    floor = max(1_000_000, -(-session_us * symbols // _PLAN_CELLS))
    return int(min(MINUTE_US, max(wanted, floor)))


def plan_session(
    seed: int,
    session: int,
    open_us: int,
    close_us: int,
    bar: DailyBar,
    rates: np.ndarray,
    slot_us: int = MINUTE_US,
) -> SessionPlan:
    """Lay out a session of ticks that aggregate to ``bar``; ``rates`` are each symbol's
    ticks per event-second on average over the session, ``slot_us`` the slots' length."""
    rng = _rng(seed, session, slot_us, -1)
    slots = -(-(close_us - open_us) // slot_us)
    starts = np.arange(slots) * slot_us
    lengths = np.minimum(slot_us, (close_us - open_us) - starts) / 1e6
    shape = activity((starts / 1e6 + lengths / 2) / ((close_us - open_us) / 1e6))
    expected = rates[:, None] * (lengths * shape)[None, :]
    cap = np.minimum(1.0, _VOLUME_SHARE * bar.volume / np.maximum(expected.sum(axis=1), 1e-9))
    counts = rng.poisson(expected * cap[:, None]).astype(np.int64)
    counts = _at_least_three_slots(counts)
    symbols = counts.shape[0]
    volumes = np.zeros_like(counts)
    before = np.full(counts.shape, np.nan)
    after = np.full(counts.shape, np.nan)
    first = np.zeros(symbols, dtype=np.int64)
    log_open, log_close = np.log(bar.open), np.log(bar.close)
    log_low, log_high = np.log(bar.low), np.log(bar.high)
    noise = np.zeros(symbols)
    for s in range(symbols):
        busy = np.flatnonzero(counts[s])
        first[s] = busy[0]
        total = int(counts[s].sum())
        volume = int(bar.volume[s])
        floor = 1 if volume >= total else 0
        share = _allocate(volume - floor * total, counts[s, busy].astype(np.float64))
        volumes[s, busy] = floor * counts[s, busy] + share.astype(np.int64)
        ends = _slot_closes(rng, busy, log_open[s], log_close[s], log_low[s], log_high[s], slots)
        after[s, busy] = ends
        before[s, busy] = np.concatenate([[log_open[s]], ends[:-1]])
        sigma = (log_high[s] - log_low[s]) / np.sqrt(slots)
        noise[s] = 0.5 * sigma / np.sqrt(max(total / len(busy), 1.0))
    return SessionPlan(
        seed, session, open_us, close_us, slot_us, counts, volumes, before, after, first,
        log_low, log_high, noise,
    )  # fmt: skip


def _at_least_three_slots(counts: np.ndarray) -> np.ndarray:
    """Counts where every symbol trades in at least three slots, twice in its first one, so
    that the open, the high, the low and the close each have a tick of their own."""
    slots = counts.shape[1]
    for s in np.flatnonzero((counts > 0).sum(axis=1) < 3):
        for m in (0, slots // 2, slots - 1):
            counts[s, m] = max(counts[s, m], 1)
    firsts = np.argmax(counts > 0, axis=1)
    rows = np.arange(counts.shape[0])
    counts[rows, firsts] = np.maximum(counts[rows, firsts], 2)
    return counts


def _slot_closes(
    rng: np.random.Generator,
    busy: np.ndarray,
    log_open: float,
    log_close: float,
    log_low: float,
    log_high: float,
    slots: int,
) -> np.ndarray:
    """Log prices at the last tick of each slot in ``busy``: a bridge from the open (at the
    first busy slot's start) to the close (the last one), stretched so that its highest and
    lowest points before the close are the day's high and low."""
    times = (busy + 1).astype(np.float64)
    begin = float(busy[0])
    sigma = max((log_high - log_low) / np.sqrt(slots), 1e-6)
    walk = np.cumsum(rng.standard_normal(len(busy)) * np.sqrt(np.diff(times, prepend=begin)))
    frac = (times - begin) / (times[-1] - begin)
    path = log_open + frac * (log_close - log_open) + sigma * (walk - frac * walk[-1])
    path[-1] = log_close
    inner = path[:-1]  # at least two points: the close keeps its own
    top, bottom = max(log_open, log_close), min(log_open, log_close)
    peak, trough = float(inner.max()), float(inner.min())
    if peak > top:
        inner[inner > top] = top + (inner[inner > top] - top) * (log_high - top) / (peak - top)
    if log_high > top and peak <= top:
        inner[int(np.argmax(inner))] = log_high
    if trough < bottom:
        below = inner < bottom
        inner[below] = bottom - (bottom - inner[below]) * (bottom - log_low) / (bottom - trough)
    if log_low < bottom and trough >= bottom:
        others = np.arange(len(inner))
        if log_high > top:  # keep the high's point
            others = np.delete(others, int(np.argmax(inner)))
        inner[int(others[np.argmin(inner[others])])] = log_low
    path[:-1] = np.clip(inner, log_low, log_high)
    return path
