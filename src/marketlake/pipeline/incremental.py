"""Incremental ingestion: ask a source only for the sessions it has not delivered yet.

For each symbol of a run, the exchange calendar's sessions in the requested range (up to the
last session closed when the run started) are compared with what *this source* has already
delivered or been asked for:

- the curated bars whose ``source`` is this source, and
- the fetch log (``quality/fetch_log``): every span a source was asked for, written by the
  lake writer once the span's bars are in the lake (so a run killed before that asks again).

The sessions left form one request per symbol, from its first to its last missing session
(one request per symbol keeps within a provider's request budget); bars of the span that this
source already delivered are dropped before they are published. A symbol with nothing
missing is not fetched at all. Sessions asked for and not delivered are known gaps: the
completeness step re-fetches the ones inside a symbol's history once (see
:mod:`marketlake.pipeline.completeness`), then ``process`` reports them in
``missing_sessions``; later runs do not ask for them again. Bars of the same sessions from
another source do not count as delivered, so switching providers re-fetches them and the
lake writer reconciles the two (:mod:`marketlake.pipeline.reconcile`).

File sources (csv, parquet) are imports, read whole on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import BARS_1D, FETCH_LOG
from marketlake.pipeline.plan import FILE_SOURCES
from marketlake.quality.completeness import session_index
from marketlake.schemas import FETCH_LOG_KEYS, FETCH_LOG_SCHEMA, UTC_US

if TYPE_CHECKING:
    from marketlake.pipeline.context import RunContext

FETCH = "fetch"
REFETCH = "refetch"
_DAY_US = 86_400_000_000


@dataclass
class FetchRequest:
    """One request: ``symbol`` over sessions [start, end], ``sessions`` of them not delivered.

    ``delivered`` holds the days in the span this source already delivered (``datetime64[D]``);
    their bars are dropped from the answer. ``stored`` tells the lake writer how many stored
    bars it reads beside the answer (see :func:`marketlake.pipeline.chunks.symbol_buckets`).
    """

    symbol: str
    start: date
    end: date
    sessions: int
    delivered: np.ndarray = field(default_factory=lambda: np.array([], "datetime64[D]"))
    stored: int = 0
    """Bars the lake held for ``symbol`` (of any source) when the request was planned."""


@dataclass
class FetchPlan:
    """The requests of a run and the symbols that need none."""

    requests: list[FetchRequest]
    up_to_date: list[str]

    @property
    def sessions(self) -> int:
        """Sessions asked for that this source has not delivered."""
        return sum(r.sessions for r in self.requests)

    def by_span(self) -> dict[tuple[date, date], list[FetchRequest]]:
        """Requests grouped by span, so a source can fetch symbols of one span together."""
        groups: dict[tuple[date, date], list[FetchRequest]] = {}
        for request in self.requests:
            groups.setdefault((request.start, request.end), []).append(request)
        return groups


def source_name(ctx: RunContext) -> str:
    """The run's source as its bars name it (``sim``, ``yahoo``, ``alphavantage``, ...)."""
    return ctx.settings.source.strip().lower()


def is_incremental(ctx: RunContext) -> bool:
    """True for sources fetched incrementally (every source but file imports)."""
    return source_name(ctx) not in FILE_SOURCES


def expected_sessions(ctx: RunContext) -> np.ndarray:
    """Sessions of the run's range that have closed (``datetime64[D]``)."""
    cal = ctx.calendar
    start, end = ctx.session_range
    try:
        closed = cal.last_session_before(ctx.now)
    except ValueError:
        return np.array([], "datetime64[D]")
    end = min(end, closed)
    if end < start:
        return np.array([], "datetime64[D]")
    return cal.session_array(start, end)


def to_days(stamps: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """UTC timestamps as ``datetime64[D]`` (the session date of daily rows)."""
    micros = stamps.cast(UTC_US).cast(pa.int64()).to_numpy(zero_copy_only=False)
    return (micros // _DAY_US).astype("datetime64[D]")


def midnight(day: date) -> datetime:
    """``day`` at 00:00 UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


_DAYS_SCHEMA = pa.schema([("symbol", pa.string()), ("day", pa.date32())])


def stored_bar_days(ctx: RunContext, symbols: Sequence[str], source: str | None) -> pa.Table:
    """Symbol and day (``date32``) of the curated bars of ``symbols`` (of ``source``).

    Only the files and row groups that may hold ``symbols`` are read, so asking a bucket of
    symbols at a time keeps memory to the bucket's bars, whatever the lake holds."""
    held = _stored_bar_keys(ctx, symbols)
    return _DAYS_SCHEMA.empty_table() if held is None else bar_days(held, symbols, source)


def _stored_bar_keys(ctx: RunContext, symbols: Sequence[str]) -> pa.Table | None:
    """Symbol, ts and source of the curated bars of ``symbols`` and maybe of other symbols
    (None when the table does not exist)."""
    if not symbols:
        return None
    held = ctx.handover.take(BARS_1D, symbols)
    if held is None and not ctx.tables.exists(BARS_1D):
        return None
    if held is None:
        held = ctx.tables.read_symbols(BARS_1D, symbols, columns=["symbol", "ts", "source"])
    return held


def _counts(held: pa.Table | None, symbols: Sequence[str]) -> list[int]:
    """How many rows of ``held`` each of ``symbols`` has."""
    if held is None or held.num_rows == 0:
        return [0] * len(symbols)
    codes = pc.index_in(held.column("symbol"), value_set=pa.array(symbols, pa.string()))
    code = codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.bincount(code[code >= 0], minlength=len(symbols)).tolist()


def bar_days(bars: pa.Table, symbols: Sequence[str], source: str | None) -> pa.Table:
    """Symbol and day (``date32``) of the ``bars`` of ``symbols`` (of ``source``)."""
    import polars as pl

    frame = pl.from_arrow(bars.select(["symbol", "ts"] + ([] if source is None else ["source"])))
    assert isinstance(frame, pl.DataFrame)
    keep = pl.col("symbol").is_in(symbols)
    if source is not None:
        keep = keep & (pl.col("source") == source)
    picked = frame.filter(keep).select("symbol", pl.col("ts").dt.date().alias("day"))
    return picked.to_arrow().cast(_DAYS_SCHEMA)


def read_fetch_log(ctx: RunContext, source: str, symbols: Sequence[str]) -> pa.Table:
    """Rows of the fetch log of ``source`` for ``symbols``."""
    import polars as pl

    if not symbols:
        return FETCH_LOG_SCHEMA.empty_table()
    rows = ctx.handover.take(FETCH_LOG, symbols)
    if rows is None:  # read the lake once; the lake writer keeps the handed-over rows current
        rows = FETCH_LOG_SCHEMA.empty_table()
        if ctx.tables.exists(FETCH_LOG):
            stored = ctx.tables.dataset(FETCH_LOG).to_table()
            mine = stored.filter(pc.is_in(stored.column("symbol"), pa.array(symbols, pa.string())))
            rows = mine.select(FETCH_LOG_SCHEMA.names).cast(FETCH_LOG_SCHEMA)
        ctx.handover.put(FETCH_LOG, rows, symbols)
    if rows.num_rows == 0:
        return rows
    frame = pl.from_arrow(rows)
    assert isinstance(frame, pl.DataFrame)
    picked = frame.filter(pl.col("symbol").is_in(symbols) & (pl.col("source") == source))
    return picked.to_arrow().select(FETCH_LOG_SCHEMA.names).cast(FETCH_LOG_SCHEMA)


def merge_fetch_log(ctx: RunContext, rows: pa.Table) -> None:
    """Merge fetch-log ``rows`` into the lake, and into the handed-over rows when held."""
    from marketlake.pipeline.chunks import after_merge
    from marketlake.rows import deduplicate

    if rows.num_rows == 0:
        return
    symbols = pc.unique(rows.column("symbol")).to_pylist()
    held = ctx.handover.take(FETCH_LOG, symbols)
    # the held rows are every stored row of these symbols (as the lake writer's stored bars
    # are): rows of new spans, a run's usual rows, are appended without the MERGE's join,
    # which rewrote the log's files every time
    none_stored = held is not None and not _any_key_in(rows, held, FETCH_LOG_KEYS)
    ctx.tables.merge(FETCH_LOG, rows, FETCH_LOG_KEYS, none_stored=none_stored)
    if held is None:
        ctx.handover.discard(FETCH_LOG, symbols)
        return
    written = deduplicate(rows, FETCH_LOG_KEYS)
    ctx.handover.put(FETCH_LOG, after_merge(held, written, FETCH_LOG_KEYS), symbols)


def _any_key_in(rows: pa.Table, stored: pa.Table, keys: Sequence[str]) -> bool:
    """True when a row of ``rows`` has the ``keys`` of a ``stored`` row."""
    import polars as pl

    if stored.num_rows == 0:
        return False
    new = pl.from_arrow(rows.select(list(keys)))
    old = pl.from_arrow(stored.select(list(keys)).cast(rows.select(list(keys)).schema))
    assert isinstance(new, pl.DataFrame) and isinstance(old, pl.DataFrame)
    return new.join(old, on=list(keys), how="semi").height > 0


def _coverage(
    symbols: Sequence[str], sessions: np.ndarray, days: pa.Table
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A (symbols x sessions) mask of sessions with a row in ``days``, plus each row's
    symbol code and day (codes are -1 for symbols not asked for)."""
    import pyarrow.compute as pc

    mask = np.zeros((len(symbols), len(sessions)), dtype=bool)
    if days.num_rows == 0 or sessions.size == 0:
        return mask, np.array([], np.int64), np.array([], "datetime64[D]")
    codes = pc.index_in(days.column("symbol"), value_set=pa.array(symbols, pa.string()))
    code = codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    day = days.column("day").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    position = session_index(sessions.astype(np.int64), day.astype(np.int64))
    hit = (code >= 0) & (position >= 0)
    mask[code[hit], position[hit]] = True
    return mask, code, day


class _DaysBySymbol:
    """Each symbol's stored days as one sorted slice, sorted once for a bucket when a symbol
    of it needs fetching (a pass over the bucket's rows per symbol made a run with one new
    session quadratic in the bucket)."""

    def __init__(self, code: np.ndarray, day: np.ndarray, symbols: int) -> None:
        order = np.lexsort((day, code))
        self._day = day[order]
        self._bounds = np.searchsorted(code[order], np.arange(symbols + 1)).tolist()

    def days(self, i: int) -> np.ndarray:
        """The sorted stored days of symbol ``i``."""
        return self._day[self._bounds[i] : self._bounds[i + 1]]


def plan_fetches(ctx: RunContext) -> FetchPlan:
    """The requests that bring each run symbol up to date with the calendar (see module doc).

    Stored bars are read a bucket of symbols at a time (about ``runner.bucket_rows`` sessions),
    so planning a run over a large universe does not hold every stored bar at once."""
    source = source_name(ctx)
    sessions = expected_sessions(ctx)
    spans: dict[str, list[tuple[int, int]]] = {}
    for row in read_fetch_log(ctx, source, ctx.symbols).to_pylist():
        span = (
            int(np.searchsorted(sessions, np.datetime64(row["start"].date(), "D"), side="left")),
            int(np.searchsorted(sessions, np.datetime64(row["end"].date(), "D"), side="right")),
        )
        spans.setdefault(row["symbol"], []).append(span)
    per_bucket = max(1, ctx.settings.runner.bucket_rows // max(1, sessions.size))
    plan = FetchPlan([], [])
    for begin in range(0, len(ctx.symbols), per_bucket):
        symbols = ctx.symbols[begin : begin + per_bucket]
        held = _stored_bar_keys(ctx, symbols)
        days = _DAYS_SCHEMA.empty_table() if held is None else bar_days(held, symbols, source)
        stored_bars = _counts(held, symbols)
        covered, code, day = _coverage(symbols, sessions, days)
        by_symbol: _DaysBySymbol | None = None
        for i, symbol in enumerate(symbols):
            for lo, hi in spans.get(symbol, ()):
                covered[i, lo:hi] = True
            missing = sessions[~covered[i]]
            if missing.size == 0:
                plan.up_to_date.append(symbol)
                continue
            first, last = missing[0], missing[-1]
            by_symbol = by_symbol or _DaysBySymbol(code, day, len(symbols))
            stored = by_symbol.days(i)
            within = stored[
                np.searchsorted(stored, first, "left") : np.searchsorted(stored, last, "right")
            ]
            plan.requests.append(
                FetchRequest(
                    symbol,
                    first.astype(object),
                    last.astype(object),
                    int(missing.size),
                    np.unique(within),
                    stored_bars[i],
                )
            )
    return plan


def fetch_log_rows(
    requests: list[FetchRequest], source: str, kind: str, run_id: str, now: datetime
) -> pa.Table:
    """Fetch-log rows for ``requests`` (re-fetches are logged as already checked)."""
    return pa.table(
        {
            "symbol": [r.symbol for r in requests],
            "source": [source] * len(requests),
            "start": [midnight(r.start) for r in requests],
            "end": [midnight(r.end) for r in requests],
            "kind": [kind] * len(requests),
            "checked": [kind == REFETCH] * len(requests),
            "run_id": [run_id] * len(requests),
            "requested_at": [now] * len(requests),
        },
        schema=FETCH_LOG_SCHEMA,
    )
