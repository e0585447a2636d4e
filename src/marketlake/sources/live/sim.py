"""A seeded intraday tick simulator: Poisson arrivals, U-shaped activity, a random walk."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from marketlake.errors import ConfigError
from marketlake.schemas import TICK_SCHEMA
from marketlake.sources.live.base import Chunk, TickSource
from marketlake.symbols import parse_symbols


def _activity(x: np.ndarray) -> np.ndarray:
    """U-shaped intraday factor (mean 1 over the session): busy at the open and the close."""
    return 0.6 * (1.0 + 2.0 * (2.0 * x - 1.0) ** 2)


_ACTIVITY_MAX = 1.8
_CHUNK = 16_384
_SECONDS_PER_YEAR = 252 * 23_400.0


class SimTickSource(TickSource):
    """Seeded intraday ticks during exchange hours, deterministic for a seed.

    Event times start at ``start`` (default: the open of the last closed session) and follow a
    Poisson process of ``event_rate_per_s`` ticks per event-second across all symbols
    (default ``rate_per_s`` or 100), U-shaped over the session; at a close they jump to the
    next session's open. Prices follow a geometric random walk per symbol (annual volatility
    20-60 %, U-shaped intraday, an overnight gap), rounded to cents; sizes are log-normal with
    a share of round lots. ``seq`` counts each symbol's ticks from 1 in emission order.

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

    def chunks(self) -> Iterator[Chunk]:
        """Simulated ticks, generated in fixed-size chunks (independent of batch_size)."""
        rng = np.random.default_rng(self.seed)
        n_sym = len(self.symbols)
        weights = 1.0 / np.sqrt(np.arange(1, n_sym + 1))
        weights = rng.permutation(weights / weights.sum())
        log_price = np.log(rng.uniform(20.0, 500.0, n_sym))
        sigma = rng.uniform(0.2, 0.6, n_sym) / np.sqrt(_SECONDS_PER_YEAR)
        opens, closes, k, t = self._session_bounds()
        last_t = np.full(n_sym, t, dtype=np.int64)
        seq = np.zeros(n_sym, dtype=np.int64)
        end_t = None if self.duration_s is None else t + int(self.duration_s * 1e6)
        emitted = 0
        names = pa.array(self.symbols, pa.string())
        while self.count is None or emitted < self.count:
            gaps = rng.exponential(1e6 / (self.event_rate * _ACTIVITY_MAX), _CHUNK)
            times = t + np.cumsum(gaps).astype(np.int64)
            session_len = float(closes[k] - opens[k])
            x = (times - opens[k]) / session_len
            accept = rng.random(_CHUNK) * _ACTIVITY_MAX < _activity(np.clip(x, 0.0, 1.0))
            who = rng.choice(n_sym, size=_CHUNK, p=weights)
            z = rng.standard_normal(_CHUNK)
            sizes = np.maximum(1.0, np.round(rng.lognormal(4.0, 1.1, _CHUNK)))
            lots = rng.random(_CHUNK) < 0.3
            sizes = np.where(lots, np.maximum(100.0, np.round(sizes / 100.0) * 100.0), sizes)
            shift_u = rng.random(_CHUNK)
            shift_r = rng.random(_CHUNK)
            in_session = times < closes[k]
            if end_t is not None:
                in_session &= times < end_t
            keep = accept & in_session
            if self.count is not None:
                room = self.count - emitted
                keep &= np.cumsum(keep) <= room
            idx = np.flatnonzero(keep)
            ts = times[idx]
            sym = who[idx]
            prices = np.empty(len(idx))
            seqs = np.empty(len(idx), dtype=np.int64)
            vol = _activity(np.clip(x[idx], 0.0, 1.0))
            for s in range(n_sym):
                mine = np.flatnonzero(sym == s)
                if not len(mine):
                    continue
                dt = np.diff(np.concatenate(([last_t[s]], ts[mine]))) / 1e6
                steps = sigma[s] * vol[mine] * np.sqrt(dt) * z[idx][mine]
                path = log_price[s] + np.cumsum(steps)
                prices[mine] = path
                log_price[s] = path[-1]
                last_t[s] = ts[mine][-1]
                seqs[mine] = seq[s] + np.arange(1, len(mine) + 1)
                seq[s] += len(mine)
            event_ts = ts.copy()
            late = shift_r[idx] < self.late_fraction
            disorder = ~late & (shift_r[idx] < self.late_fraction + self.ooo_fraction)
            event_ts[disorder] -= (shift_u[idx][disorder] * self.disorder_us).astype(np.int64)
            event_ts[late] -= self.late_by_us
            event_ts = np.maximum(event_ts, opens[k])
            if len(idx):
                yield self._chunk(
                    names.take(pa.array(sym)), event_ts, prices, sizes[idx], seqs, emitted
                )
            emitted += len(idx)
            if end_t is not None and times[-1] >= end_t:
                return
            if in_session.all():
                t = int(times[-1])
                continue
            if end_t is not None and end_t <= closes[k]:
                return
            k += 1  # the session closed: continue at the next open after an overnight gap
            if k >= len(opens):
                return
            t = int(opens[k])
            last_t[:] = t
            log_price += rng.normal(0.0, 0.01, n_sym)

    def _chunk(
        self,
        symbols: pa.Array,
        ts: np.ndarray,
        log_prices: np.ndarray,
        sizes: np.ndarray,
        seqs: np.ndarray,
        emitted: int,
    ) -> Chunk:
        prices = np.maximum(np.round(np.exp(log_prices), 2), 0.01)
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
