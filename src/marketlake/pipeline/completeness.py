"""Completeness: sessions a source was asked for and did not deliver are re-fetched once.

After the lake writer has drained the bus, every fetch-log row of the run's source that is
not yet ``checked`` is compared with the curated bars: sessions of its span from the symbol's
first stored bar on that have no bar are gaps. Gaps are asked for again in one request per
symbol, in the same run, and the pending rows are then marked checked. Whatever is still
missing is reported by ``process`` in ``missing_sessions``. Sessions before a symbol's first
bar (before its listing, or before a simulator's origin) are not gaps.

A run killed before the rows are marked re-fetches again when re-run; the re-fetched bars are
merged on their keys, so the lake still holds each bar once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketlake.pipeline.incremental import (
    FETCH,
    FetchRequest,
    merge_fetch_log,
    read_fetch_log,
    source_name,
    stored_bar_days,
    to_days,
)
from marketlake.quality.completeness import session_index
from marketlake.schemas import FETCH_LOG_SCHEMA

if TYPE_CHECKING:
    from marketlake.pipeline.context import RunContext


@dataclass
class Refetch:
    """The gaps to ask for again (one request per symbol) and the fetch-log rows they close."""

    requests: list[FetchRequest]
    pending: pa.Table
    gaps: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def sessions(self) -> int:
        """Gap sessions to re-fetch."""
        return sum(int(days.size) for days in self.gaps.values())


def _stored_by_symbol(ctx: RunContext, symbols: list[str]) -> dict[str, np.ndarray]:
    """Each symbol's stored bar days, sorted (symbols without bars left out)."""
    return _by_symbol(stored_bar_days(ctx, symbols, None))


def _stored_in_buckets(
    ctx: RunContext, sizes: dict[str, int]
) -> Iterator[tuple[str, np.ndarray | None]]:
    """Each symbol of ``sizes`` in sorted order with its stored bar days (None without bars),
    read a bucket of symbols at a time (about ``runner.bucket_rows`` sessions, by ``sizes``),
    each bucket from the lake files and row groups that may hold its symbols: reading every
    symbol's days at once made the memory of ``consume_history`` grow with the number of
    symbols (2.0 GB for 2,000 symbols x 30 years, 1.3 GB with buckets)."""
    from marketlake.lake.symbol_reads import bucket_symbols

    for bucket in bucket_symbols(sizes, ctx.settings.runner.bucket_rows):
        stored = _stored_by_symbol(ctx, bucket)
        for symbol in bucket:
            yield symbol, stored.get(symbol)


def _by_symbol(days: pa.Table) -> dict[str, np.ndarray]:
    """``days`` (symbol, day) as each symbol's sorted days."""
    found: dict[str, np.ndarray] = {}
    if days.num_rows == 0:
        return found
    column = days.column("symbol").combine_chunks()
    if not _grouped(column):  # handed-over and lake rows come grouped: sorting is rare
        days = days.sort_by([("symbol", "ascending")])
        column = days.column("symbol").combine_chunks()
    values = days.column("day").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    runs = pc.run_end_encode(column)
    begin = 0
    for name, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
        found[name] = np.sort(values[begin:end])
        begin = end
    return found


def _grouped(column: pa.Array) -> bool:
    """True when ``column`` is sorted, so equal symbols are adjacent."""
    if len(column) < 2:
        return True
    return bool(pc.all(pc.less_equal(column.slice(0, len(column) - 1), column.slice(1))).as_py())


def _held(have: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Which of ``days`` are in the sorted ``have`` (``np.isin`` for a sorted haystack)."""
    at = np.minimum(np.searchsorted(have, days), have.size - 1)
    return have[at] == days


def plan_refetch(ctx: RunContext) -> Refetch:
    """The gaps left in the spans the run's source was asked for and not yet checked."""
    log = read_fetch_log(ctx, source_name(ctx), ctx.symbols)
    pending = log.filter(
        pc.and_(pc.invert(log.column("checked")), pc.equal(log.column("kind"), FETCH))
    )
    if pending.num_rows == 0:
        return Refetch([], pending)
    spans: dict[str, list[np.ndarray]] = {}
    for row in pending.to_pylist():
        asked = _asked(ctx, row)
        if asked.size:
            spans.setdefault(row["symbol"], []).append(asked)
    requests: list[FetchRequest] = []
    gaps: dict[str, np.ndarray] = {}
    sizes = {symbol: sum(part.size for part in parts) for symbol, parts in spans.items()}
    for symbol, have in _stored_in_buckets(ctx, sizes):
        parts = spans[symbol]
        if have is None or have.size == 0:
            continue  # nothing delivered at all: no history to be complete against
        # one span is already sorted and unique: a session array of the calendar
        asked = parts[0] if len(parts) == 1 else np.unique(np.concatenate(parts))
        missing = asked[(asked >= have[0]) & ~_held(have, asked)]
        if missing.size == 0:
            continue
        first, last = missing[0], missing[-1]
        gaps[symbol] = missing
        requests.append(
            FetchRequest(
                symbol,
                first.astype(object),
                last.astype(object),
                int(missing.size),
                have[(have >= first) & (have <= last)],
                int(have.size),
            )
        )
    return Refetch(requests, pending, gaps)


def _asked(ctx: RunContext, row: dict[str, Any]) -> np.ndarray:
    """The sessions of a fetch-log ``row``'s span that the calendar knows."""
    cal = ctx.calendar
    start = max(row["start"].date(), cal.first)
    end = min(row["end"].date(), cal.last)
    return cal.session_array(start, end) if start <= end else np.array([], "datetime64[D]")


def settle_log(ctx: RunContext, log: pa.Table, held: pa.Table | None) -> pa.Table:
    """``log`` (the fetch-log rows a lake-writer chunk carries) with ``checked`` set on the
    rows the re-fetch after the drain would close without asking for anything, whatever the
    rest of the run delivers; so the common run writes its fetch log once, not twice.

    ``held`` is every bar the lake now holds for the chunk's symbols; a request's bars
    precede its fetch-log row on the bus, so they are among them. A row is settled when it
    is of the run's source and its span has a bar on every session, the first included (a
    later, earlier-dated bar could otherwise turn its first sessions into gaps), or when its
    span has no session at all.
    """
    from marketlake.pipeline.incremental import is_incremental

    if log.num_rows == 0 or not is_incremental(ctx):
        return log
    checked = log.column("checked").to_numpy(zero_copy_only=False).copy()
    fetched = pc.and_(
        pc.equal(log.column("kind"), FETCH), pc.equal(log.column("source"), source_name(ctx))
    ).to_numpy(zero_copy_only=False)
    settling = ~checked & fetched
    if settling.any():
        symbols = pc.unique(log.column("symbol"))
        checked |= settling & _spans_held(ctx.calendar.days, log, symbols, held)
    index = FETCH_LOG_SCHEMA.get_field_index("checked")
    return log.set_column(index, FETCH_LOG_SCHEMA.field("checked"), pa.array(checked))


def _spans_held(
    sessions: np.ndarray, log: pa.Table, symbols: pa.Array, held: pa.Table | None
) -> np.ndarray:
    """For each row of ``log``, whether ``held`` has a bar on every session of its span (a
    span without sessions included).

    Each held bar on a session becomes one number, its symbol's place in ``symbols`` times
    the number of sessions plus the session's, so a span's held sessions are one range of the
    sorted numbers: the span is whole when the range holds as many as the span has sessions.
    """
    width = len(sessions) + 1
    lo = np.searchsorted(sessions, to_days(log.column("start")))
    hi = np.searchsorted(sessions, to_days(log.column("end")), "right")
    asked = np.maximum(hi - lo, 0)
    if held is None or held.num_rows == 0 or not asked.any():
        return asked == 0
    days = np.asarray(sessions, dtype="datetime64[D]").astype(np.int64)
    held_days = to_days(held.column("ts")).astype(np.int64)
    held_symbols = held.column("symbol")
    spanned = (held_days >= days[lo[asked > 0].min()]) & (held_days <= days[hi.max() - 1])
    if not spanned.all():  # a day's run: one session of each symbol's whole history
        held_days, held_symbols = held_days[spanned], held_symbols.filter(pa.array(spanned))
    at = session_index(days, held_days)
    owner = pc.index_in(held_symbols, value_set=symbols)
    keep = (at >= 0) & pc.is_valid(owner).to_numpy(zero_copy_only=False)
    owners = owner.to_numpy(zero_copy_only=False)
    keys = owners[keep].astype(np.int64) * width + at[keep]
    if keys.size > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        keys = np.unique(keys)  # held rows out of key order, or a day held twice
    row_owner = (
        pc.index_in(log.column("symbol"), value_set=symbols)
        .to_numpy(zero_copy_only=False)
        .astype(np.int64)
    )
    base = row_owner * width
    have = np.searchsorted(keys, base + hi) - np.searchsorted(keys, base + lo)
    return (asked == 0) | (have == asked)


def count_filled(ctx: RunContext, refetch: Refetch) -> int:
    """Gap sessions of ``refetch`` that now have a bar."""
    if not refetch.gaps:
        return 0
    stored = _stored_by_symbol(ctx, sorted(refetch.gaps))
    return sum(
        int(np.isin(days, stored.get(symbol, days[:0])).sum())
        for symbol, days in refetch.gaps.items()
    )


def mark_checked(ctx: RunContext, refetch: Refetch) -> None:
    """Record that the pending fetch-log rows have had their one re-fetch."""
    if refetch.pending.num_rows == 0:
        return
    done = refetch.pending.set_column(
        FETCH_LOG_SCHEMA.get_field_index("checked"),
        FETCH_LOG_SCHEMA.field("checked"),
        pa.array([True] * refetch.pending.num_rows, pa.bool_()),
    )
    merge_fetch_log(ctx, done)
