"""A seeded simulator of daily bars on real exchange sessions.

Every symbol gets its own random streams, derived from ``(seed, symbol)`` with SHA-256, and is
simulated from a fixed origin (2000-01-03) forward. A bar therefore depends only on the seed,
the symbol and its session, never on the range asked for: an incremental run, a backfill and
one full run agree to the last bit.

The model: GARCH(1,1) log returns split into an overnight gap and an intraday move, rare
jumps at the open, high/low excursions beyond the open and close, volumes that rise with the
size of the move, quarterly dividends for about half of the symbols, and splits (2:1 up to
5:1) when the price climbs far above the symbol's usual level. Bars are as traded: on a split
ex-date prices fall by the ratio (and volume rises by it); on a dividend ex-date the open and
close reflect the cash paid out.

This module holds the source and the loop over symbol groups; the model is in ``model``
and the tables and raw records it emits in ``output``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from datetime import UTC, date, datetime
from functools import partial
from typing import ClassVar

import numpy as np
import pyarrow as pa

from marketlake.calendar import DEFAULT_CALENDAR, get_sessions
from marketlake.prefetch import made_ahead
from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA
from marketlake.sources.base import HistoryBatch, HistorySource
from marketlake.sources.sim.model import simulate_paths
from marketlake.sources.sim.output import (
    ACTION_FIELDS,
    BAR_FIELDS,
    SOURCE,
    action_table,
    bar_table,
    json_rows,
    raw_json,
)
from marketlake.symbols import parse_symbols

__all__ = ["ORIGIN", "SOURCE", "SimSource", "simulate_bars"]

ORIGIN = date(2000, 1, 3)
_CHUNK = 32  # symbols simulated together: keeps the working arrays small
Group = tuple[list[str], pa.Table, pa.Table]  # symbols, bars, actions


def simulate_bars(
    symbols: Sequence[str],
    start: date,
    end: date,
    seed: int = 42,
    calendar: str = DEFAULT_CALENDAR,
    ingested_at: datetime | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Simulate daily bars and corporate actions of ``symbols`` for sessions in [start, end].

    Sessions before 2000-01-03 or after today are not simulated. Returns ``(bars, actions)``
    in the canonical schemas, sorted by symbol then date.
    """
    names = sorted(parse_symbols(symbols))
    groups = [make() for make in _group_jobs(names, start, end, seed, calendar, ingested_at)]
    if not groups:
        return BAR_SCHEMA.empty_table(), CORPORATE_ACTION_SCHEMA.empty_table()
    return pa.concat_tables([g[1] for g in groups]), pa.concat_tables([g[2] for g in groups])


class SimSource(HistorySource):
    """Deterministic simulated history: any valid symbol, real sessions, as-traded bars."""

    name: ClassVar[str] = SOURCE

    def __init__(self, seed: int = 42, calendar: str = DEFAULT_CALENDAR) -> None:
        self.seed = seed
        self.calendar = calendar

    def fetch_symbol(self, symbol: str, start: date, end: date) -> HistoryBatch:
        """Simulate ``symbol`` for sessions in [start, end]."""
        return next(self.fetch_history([symbol], start, end))

    def fetch_history(
        self, symbols: Sequence[str], start: date, end: date
    ) -> Iterator[HistoryBatch]:
        """Simulate the ``symbols`` in groups, yielding one batch per group.

        A group's symbols are simulated together, so the group is the simulator's response:
        one batch and one raw record of up to 32 symbols (see :func:`group_batch_id`).
        """
        names = parse_symbols(symbols)
        done: set[str] = set()
        # the next groups are simulated and formatted on two threads (numpy and Polars,
        # mostly without the GIL) while the caller stores and publishes the batch of this one
        groups = made_ahead(
            (
                partial(_with_raw, make, self.seed)
                for make in _group_jobs(names, start, end, self.seed, self.calendar, None)
            ),
            workers=2,
            name="marketlake-sim",
        )
        with closing(groups):
            for (group, bars, actions), raw in groups:
                done.update(group)
                yield HistoryBatch(
                    source=SOURCE,
                    batch_id=group_batch_id(group, start, end),
                    bars=bars,
                    actions=actions,
                    raw=raw,
                    raw_format="json",
                )
        for symbol in names:
            if symbol not in done:  # nothing to simulate in [start, end]
                yield HistoryBatch(
                    source=SOURCE,
                    batch_id=group_batch_id([symbol], start, end),
                    bars=BAR_SCHEMA.empty_table(),
                    raw=raw_json([symbol], self.seed, b"", b""),
                    raw_format="json",
                )


def group_batch_id(group: Sequence[str], start: date, end: date) -> str:
    """The batch id of the simulated ``group`` over [start, end]: ``AAPL-2024-01-02-2024-12-31``
    for one symbol; ``AAPL-V-32-<digest>-...`` (first, last, count and a digest of all of
    them) for several, so that two groups differing only inside never share a raw file."""
    span = f"{start}-{end}"
    if len(group) == 1:
        return f"{group[0]}-{span}"
    digest = hashlib.blake2b("\n".join(group).encode(), digest_size=5).hexdigest()
    return f"{group[0]}-{group[-1]}-{len(group)}-{digest}-{span}"


def _with_raw(make: Callable[[], Group], seed: int) -> tuple[Group, bytes]:
    """The group ``make`` simulates, with its raw record."""
    group, bars, actions = make()
    raw = raw_json(group, seed, json_rows(bars, BAR_FIELDS), json_rows(actions, ACTION_FIELDS))
    return (group, bars, actions), raw


def _group_jobs(
    names: Sequence[str],
    start: date,
    end: date,
    seed: int,
    calendar: str,
    ingested_at: datetime | None,
) -> Iterator[Callable[[], Group]]:
    """One call per group of ``names``, each simulating that group: its bars and actions, with
    each row's owner index. The calls are independent of each other and of their order."""
    stamp = ingested_at or datetime.now(UTC)
    table = get_sessions(calendar)
    last = min(end, stamp.astimezone(UTC).date(), table.last)
    if not names or last < max(start, ORIGIN):
        return
    days = table.session_array(ORIGIN, last)
    first = int(np.searchsorted(days, np.datetime64(max(start, ORIGIN), "D")))

    def simulate(group: list[str]) -> Group:
        paths = simulate_paths(group, days, seed, first)
        bars = bar_table(group, days[first:], paths, stamp)
        return group, bars, action_table(group, days[first:], paths, stamp)

    for lo in range(0, len(names), _CHUNK):
        yield partial(simulate, list(names[lo : lo + _CHUNK]))
