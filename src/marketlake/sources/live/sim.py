"""A seeded intraday tick simulator that streams the batch simulator's market.

Each session's ticks are laid out from the batch simulator's daily bar of that symbol and
session (:mod:`marketlake.sources.sim.intraday`): the first tick of a day trades at the
day's open, the last at its close, the highest and lowest at its high and low, and the sizes
add up to its volume. So a day streamed in full aggregates to the bar ``marketlake run --source
sim`` stores for it, with the same seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from marketlake.errors import ConfigError
from marketlake.schemas import TICK_SCHEMA
from marketlake.sources.live.base import Chunk, TickSource
from marketlake.sources.sim.intraday import DailyBar, SessionPlan, plan_session, slot_length
from marketlake.symbols import parse_symbols

_BAR_SESSIONS = 64  # daily bars are simulated this many sessions ahead at a time
_US_PER_DAY = 86_400_000_000


class SimTickSource(TickSource):
    """Seeded intraday ticks during exchange hours, deterministic for a seed.

    Event times start at ``start`` (default: the open of the last closed session) and follow a
    Poisson process of ``event_rate_per_s`` ticks per event-second across all symbols
    (default ``rate_per_s`` or 100), U-shaped over the session; at a close they jump to the
    next session's open. A symbol's share of the ticks is fixed by the seed; it has at most
    0.9 ticks per share of its daily volume. Prices and sizes follow the batch simulator's
    daily bars (see the module documentation); a slot's ticks (a minute, shorter for busy
    streams) depend only on the seed, the symbols, the event rate and the slot, so a stream
    that starts later continues the same
    market. ``seq`` counts each symbol's ticks in emission order from ``seq_from[symbol] + 1``
    (default 1).

    ``rate_per_s`` paces emission in wall time (None: as fast as possible). The stream ends
    after ``count`` ticks or when event time passes ``start + duration_s``, whichever first
    (neither: never). For tests, ``out_of_order_fraction`` of ticks get their event time moved
    back by up to ``disorder_s`` and ``late_fraction`` by ``late_by_s`` (never before the
    session open); their emission position and ``seq`` stay.
    """

    name = "sim"

    def __init__(
        self,
        symbols: Sequence[str],
        rate_per_s: float | None = None,
        seed: int = 42,
        start: datetime | None = None,
        count: int | None = None,
        duration_s: float | None = None,
        out_of_order_fraction: float = 0.0,
        late_fraction: float = 0.0,
        late_by_s: float = 60.0,
        *,
        disorder_s: float = 2.0,
        seq_from: Mapping[str, int] | None = None,
        event_rate_per_s: float | None = None,
        calendar: str = "XNYS",
        batch_size: int = 10_000,
        linger_s: float = 0.002,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(batch_size=batch_size, linger_s=linger_s, clock=clock, sleep=sleep)
        self.symbols = parse_symbols(symbols)
        if not self.symbols:
            raise ConfigError("SimTickSource needs at least one symbol")
        if rate_per_s is not None and rate_per_s <= 0:
            raise ConfigError(f"rate_per_s must be positive or None, got {rate_per_s}")
        for name, frac in (("out_of_order", out_of_order_fraction), ("late", late_fraction)):
            if not 0.0 <= frac <= 1.0:
                raise ConfigError(f"{name}_fraction must be within [0, 1], got {frac}")
        self.rate_per_s = rate_per_s
        self.event_rate = float(event_rate_per_s or rate_per_s or 100.0)
        self.seed = seed
        self.start = start
        self.count = count
        self.duration_s = duration_s
        self.ooo_fraction = out_of_order_fraction
        self.late_fraction = late_fraction
        self.late_by_us = int(late_by_s * 1e6)
        self.disorder_us = int(disorder_s * 1e6)
        self.calendar = calendar
        self.seq_from = dict(seq_from or {})
        self._ready: tuple[np.ndarray, np.ndarray, int, int, _DailyBars, SessionPlan] | None = None

    def _session_bounds(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        from marketlake.calendar import get_sessions

        table = get_sessions(self.calendar)
        opens = table.opens.astype(np.int64)
        closes = table.closes.astype(np.int64)
        if self.start is None:
            day = table.last_session_before(datetime.now(UTC))
            first = int(
                np.datetime64(table.open_close(day)[0].replace(tzinfo=None), "us").astype(np.int64)
            )
        else:
            first = int(
                np.datetime64(self.start.astimezone(UTC).replace(tzinfo=None), "us").astype(
                    np.int64
                )
            )
        k = int(np.searchsorted(closes, first, side="right"))
        if k >= len(opens):
            raise ConfigError(f"no {self.calendar} session after {self.start}")
        return opens, closes, k, max(first, int(opens[k]))

    def open(self) -> None:
        """Simulate the daily bars and lay out the first session before ticks are asked for,
        so that a paced stream's first ticks are not late by that set-up."""
        self._ready = self._first_plan()

    def _first_plan(self) -> tuple[np.ndarray, np.ndarray, int, int, _DailyBars, SessionPlan]:
        opens, closes, k, t = self._session_bounds()
        bars = _DailyBars(self.symbols, self.seed, self.calendar)
        plan = self._plan(bars, k, int(opens[k]), int(closes[k]))
        return opens, closes, k, t, bars, plan

    def chunks(self) -> Iterator[Chunk]:
        """Simulated ticks, one slot of event time at a time (independent of batch_size)."""
        ready, self._ready = self._ready, None
        opens, closes, k, t, bars, plan = ready or self._first_plan()
        seq = np.array([self.seq_from.get(s, 0) for s in self.symbols], dtype=np.int64)
        end_t = None if self.duration_s is None else t + int(self.duration_s * 1e6)
        names = pa.array(self.symbols, pa.string())
        emitted = 0
        while k < len(opens):
            if plan.open_us != int(opens[k]):
                plan = self._plan(bars, k, int(opens[k]), int(closes[k]))
            for m in range((t - int(opens[k])) // plan.slot_us, plan.slots):
                if end_t is not None and int(opens[k]) + m * plan.slot_us >= end_t:
                    return
                who, times, prices, sizes = plan.slot(m)
                shift_u, shift_r = _shift_draws(self.seed, plan.session, m, len(times))
                keep = times >= t
                if end_t is not None:
                    keep &= times < end_t
                if self.count is not None:
                    keep &= np.cumsum(keep) <= self.count - emitted
                idx = np.flatnonzero(keep)
                if len(idx):
                    sym = who[idx]
                    seqs = _number(sym, seq)
                    event_ts = self._shift(times[idx], shift_u[idx], shift_r[idx], int(opens[k]))
                    yield self._chunk(
                        names.take(pa.array(sym)), event_ts, prices[idx], sizes[idx], seqs, emitted
                    )
                    emitted += len(idx)
                if self.count is not None and emitted >= self.count:
                    return
            k += 1  # the session closed: continue at the next open after an overnight gap
            if k < len(opens):
                t = int(opens[k])

    def _weights(self) -> np.ndarray:
        """Each symbol's share of the ticks (1/sqrt(rank), ranks shuffled by the seed)."""
        rng = np.random.default_rng(self.seed & 0xFFFFFFFFFFFFFFFF)
        weights = 1.0 / np.sqrt(np.arange(1, len(self.symbols) + 1))
        return np.asarray(rng.permutation(weights / weights.sum()))

    def _plan(self, bars: _DailyBars, k: int, open_us: int, close_us: int) -> SessionPlan:
        rates = self.event_rate * self._weights()
        session = open_us // _US_PER_DAY
        slot_us = slot_length(self.event_rate, len(self.symbols))
        return plan_session(self.seed, session, open_us, close_us, bars.of(k), rates, slot_us)

    def _shift(self, ts: np.ndarray, u: np.ndarray, r: np.ndarray, open_us: int) -> np.ndarray:
        """Event times with the late and out-of-order shifts asked for (tests only)."""
        if not (self.late_fraction or self.ooo_fraction):
            return ts
        event_ts = ts.copy()
        late = r < self.late_fraction
        disorder = ~late & (r < self.late_fraction + self.ooo_fraction)
        event_ts[disorder] -= (u[disorder] * self.disorder_us).astype(np.int64)
        event_ts[late] -= self.late_by_us
        return np.maximum(event_ts, open_us)

    def _chunk(
        self,
        symbols: pa.Array,
        ts: np.ndarray,
        prices: np.ndarray,
        sizes: np.ndarray,
        seqs: np.ndarray,
        emitted: int,
    ) -> Chunk:
        batch = pa.RecordBatch.from_arrays(
            [
                symbols,
                pa.array(ts.astype("datetime64[us]"), TICK_SCHEMA.field("ts").type),
                pa.array(prices, pa.float64()),
                pa.array(sizes, pa.float64()),
                pa.array([self.name], pa.string()).take(pa.array(np.zeros(len(ts), np.int64))),
                pa.array(seqs, pa.int64()),
            ],
            schema=TICK_SCHEMA,
        )
        if self.rate_per_s is None:
            return batch, None
        due = (emitted + np.arange(len(ts))) / self.rate_per_s
        return batch, due


def resume_start(last: datetime, calendar: str, now: datetime | None = None) -> datetime:
    """Where a simulated stream whose last tick was at ``last`` continues: just after it, or
    at the next session's open when ``last``'s session has closed by ``now`` (the wall clock
    by default), because a processor closes the windows of a session once it is over."""
    from marketlake.calendar import get_sessions

    table = get_sessions(calendar)
    at = np.datetime64(last.astimezone(UTC).replace(tzinfo=None), "us")
    k = int(np.searchsorted(table.closes, at, side="right"))  # the session of ``last``, or next
    clock = np.datetime64((now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None), "us")
    if k < len(table.opens) and table.opens[k] <= at and clock < table.closes[k]:
        return last + timedelta(microseconds=1)
    if k < len(table.opens) and table.opens[k] <= at:
        k += 1
    if k >= len(table.opens):
        raise ConfigError(f"no {calendar} session after {last} to continue the stream in")
    micros = int(table.opens[k].astype(np.int64))
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def _shift_draws(seed: int, session: int, slot: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform draws for the test-only event-time shifts of a slot's ticks."""
    words = [seed & 0xFFFFFFFFFFFFFFFF, session, slot, 1]
    rng = np.random.default_rng(np.random.SeedSequence(words))
    return rng.random(n), rng.random(n)


def _number(symbols: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Sequence numbers continuing ``last`` (per symbol, updated in place) in row order."""
    seqs = np.empty(len(symbols), dtype=np.int64)
    for s in np.unique(symbols):
        mine = np.flatnonzero(symbols == s)
        seqs[mine] = last[s] + np.arange(1, len(mine) + 1)
        last[s] += len(mine)
    return seqs


class _DailyBars:
    """The batch simulator's daily bars of the stream's symbols, simulated ahead in blocks."""

    def __init__(self, symbols: Sequence[str], seed: int, calendar: str) -> None:
        from marketlake.calendar import get_sessions
        from marketlake.sources.sim.source import ORIGIN

        self.symbols = list(symbols)
        self.seed = seed
        self.days = get_sessions(calendar).days
        self.origin = int(np.searchsorted(self.days, np.datetime64(ORIGIN, "D")))
        self.upto = -1
        self.paths: dict[str, np.ndarray] = {}

    def of(self, k: int) -> DailyBar:
        """The bars of session ``k`` (an index into the calendar's sessions)."""
        from marketlake.sources.sim.model import simulate_paths

        if k < self.origin:
            raise ConfigError(
                f"the sim streams sessions from 2000-01-03 on; asked for {self.days[k]}"
            )
        if k > self.upto:
            self.upto = min(k + _BAR_SESSIONS, len(self.days) - 1)
            self.paths = simulate_paths(
                self.symbols, self.days[self.origin : self.upto + 1], self.seed
            )
        i = k - self.origin
        p = self.paths
        return DailyBar(
            p["open"][:, i], p["high"][:, i], p["low"][:, i], p["close"][:, i], p["volume"][:, i]
        )
