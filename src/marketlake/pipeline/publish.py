"""Fetched history onto the bus: raw payload kept, already-delivered bars dropped, span logged.

Every request's payload is stored under ``raw/`` before its records are published (on a
background thread, while the source produces the next request's batch). A
request's bars, corporate actions and parser rejects go out as one message per dataset and
symbol, keyed by symbol; the request's fetch-log row follows them on the same key, so the lake
writer sees it only after the bars it covers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketlake.pipeline.incremental import (
    REFETCH,
    FetchRequest,
    fetch_log_rows,
    source_name,
    to_days,
)
from marketlake.pipeline.messages import HISTORY_TOPIC, encode_table, history_headers
from marketlake.pipeline.result import StageResult

if TYPE_CHECKING:
    from marketlake.pipeline.context import RunContext
    from marketlake.sources.base import HistoryBatch

FETCH_LOG_DATASET = "fetch_log"


def per_symbol(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """Split ``table`` into one table per symbol: in the table's order when each symbol's
    rows are together (a source's batch of several symbols), else sorted by symbol."""
    if table.num_rows == 0:
        return
    runs = pc.run_end_encode(table.column("symbol").combine_chunks())
    if len(runs.values) != len(pc.unique(runs.values)):
        table = table.sort_by([("symbol", "ascending")])
        runs = pc.run_end_encode(table.column("symbol").combine_chunks())
    begin = 0
    for symbol, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
        yield symbol, table.slice(begin, end - begin)
        begin = end


def drop_delivered(bars: pa.Table, symbol: str, delivered: np.ndarray | None) -> pa.Table:
    """``bars`` of ``symbol`` without the days in ``delivered`` (``datetime64[D]``)."""
    if delivered is None or delivered.size == 0 or bars.num_rows == 0:
        return bars
    keep = ~np.isin(to_days(bars.column("ts")), delivered)
    return bars.filter(pa.array(keep, pa.bool_()))


def publish_batch(
    ctx: RunContext,
    producer: Any,
    batch: HistoryBatch,
    *,
    delivered: Mapping[str, np.ndarray] | None = None,
    raw_suffix: str = "",
    stored: Mapping[str, int] | None = None,
) -> tuple[int, int]:
    """Keep ``batch``'s raw payload and publish its records; return (bars, rejects) published
    (``delivered`` and ``stored``: see :func:`publish_records`)."""
    keep_raw(ctx, batch, raw_suffix)
    return publish_records(producer, batch, ctx.run_id, delivered, stored)


def keep_raw(ctx: RunContext, batch: HistoryBatch, raw_suffix: str = "") -> None:
    """Store ``batch``'s raw payload (if it has one) under ``raw/``."""
    from marketlake.lake.raw import raw_name, write_raw

    if batch.raw:
        write_raw(
            ctx.storage,
            source=batch.source,
            dataset="bars_1d",
            batch_id=raw_name(batch.batch_id + raw_suffix),
            payload=batch.raw,
            fmt=batch.raw_format,
            ingest_date=ctx.now.date(),
        )


RAW_WRITERS = 4
"""Raw payloads stored at once: their fsyncs wait on the disk together, not one by one."""

RAW_PENDING_BYTES = 8 * 1024 * 1024
"""Batches (payload and tables) held while their payloads are stored: a source whose batches
are large (the simulator's groups of 32 symbols) keeps one or two in memory, not four."""


def raw_kept(
    ctx: RunContext,
    batches: Iterable[HistoryBatch],
    raw_suffix: str = "",
    writers: int = RAW_WRITERS,
) -> Iterator[HistoryBatch]:
    """``batches`` in order, each yielded only once its raw payload is stored.

    Background threads compress and write the payloads of up to ``writers`` batches (and
    about :data:`RAW_PENDING_BYTES` of them) while the source produces the next batch and the
    caller publishes earlier ones (zlib and fsync release the GIL, and the disk acknowledges
    several fsyncs in one journal commit).
    """
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    window = max(writers, 1)
    with ThreadPoolExecutor(max_workers=window, thread_name_prefix="marketlake-raw") as pool:
        pending: deque[tuple[HistoryBatch, Future[None]]] = deque()
        held = 0
        for batch in batches:
            pending.append((batch, pool.submit(keep_raw, ctx, batch, raw_suffix)))
            held += _held_bytes(batch)
            while len(pending) > window or (len(pending) > 1 and held > RAW_PENDING_BYTES):
                done, stored = pending.popleft()
                held -= _held_bytes(done)
                stored.result()
                yield done
        while pending:
            done, stored = pending.popleft()
            stored.result()
            yield done


def _held_bytes(batch: HistoryBatch) -> int:
    return len(batch.raw) + batch.bars.nbytes + batch.actions.nbytes


def publish_records(
    producer: Any,
    batch: HistoryBatch,
    run_id: str,
    delivered: Mapping[str, np.ndarray] | None = None,
    stored: Mapping[str, int] | None = None,
    starting: Callable[[set[str]], None] | None = None,
) -> tuple[int, int]:
    """Publish ``batch``'s records for run ``run_id`` (bars already delivered left out);
    return (bars, rejects). ``stored`` counts each symbol's bars in the lake (see
    :data:`marketlake.pipeline.messages.STORED_HEADER`).

    Records go symbol by symbol, in the batch's order; ``starting`` is called with each
    symbol before its records are sent (see :class:`_LogRows`)."""
    sent = 0
    actions = dict(per_symbol(batch.actions))
    bars = dict(per_symbol(batch.bars))
    for symbol in [*bars, *sorted(actions.keys() - bars.keys())]:
        if starting is not None:
            starting({symbol})
        # a symbol's actions go before its bars: a poll that ends between the two then
        # leaves actions stored without bars, which the next run fetches again, never bars
        # without their actions, which it would take for delivered (see :mod:`.incremental`)
        if symbol in actions:
            _send(producer, "corporate_actions", symbol, actions[symbol], batch, run_id)
        if symbol in bars:
            part = drop_delivered(bars[symbol], symbol, (delivered or {}).get(symbol))
            sent += part.num_rows
            count = (stored or {}).get(symbol, 0)
            _send(producer, "bars_1d", symbol, part, batch, run_id, count)
    _send(producer, "quarantine", batch.batch_id, batch.rejects, batch, run_id)
    return sent, batch.rejects.num_rows


def _send(
    producer: Any,
    dataset: str,
    key: str,
    table: pa.Table,
    batch: HistoryBatch,
    run_id: str,
    stored: int = 0,
) -> None:
    if table.num_rows:
        headers = history_headers(dataset, batch.source, batch.batch_id, run_id, stored)
        producer.send(HISTORY_TOPIC, key, encode_table(table), headers)


def check_budget(ctx: RunContext, requests: list[FetchRequest]) -> None:
    """Let a source with a request budget refuse the whole plan before any request."""
    check = getattr(ctx.source, "check_budget", None)
    if check is None or not requests:
        return
    start = min(r.start for r in requests)
    end = max(r.end for r in requests)
    check([r.symbol for r in requests], start, end)


def publish_requests(
    ctx: RunContext, producer: Any, requests: list[FetchRequest], kind: str, result: StageResult
) -> int:
    """Fetch every request from the run's source and publish it; return bars published.

    Requests sharing a span are fetched in one call of the source (the simulator computes
    them together). Each request's fetch-log row is published after its records: as soon as
    the source has moved on to other symbols, so that the lake writer mostly finds a row in
    the same poll as its bars and settles it there (see
    :func:`marketlake.pipeline.completeness.settle_log`); rows of symbols the source sent
    nothing for follow the group.
    """
    groups: dict[tuple[Any, Any], list[FetchRequest]] = {}
    for request in requests:
        groups.setdefault((request.start, request.end), []).append(request)
    published = 0
    done: set[str] = set()
    suffix = f"-{REFETCH}" if kind == REFETCH else ""
    for (start, end), group in groups.items():
        delivered = {r.symbol: r.delivered for r in group}
        stored = {r.symbol: r.stored for r in group}
        log = _LogRows(ctx, producer, group, kind)
        batches = ctx.source.fetch_history([r.symbol for r in group], start, end)
        for batch in raw_kept(ctx, batches, suffix):
            bars, rejects = publish_records(
                producer, batch, ctx.run_id, delivered, stored, starting=log.send_done
            )
            published += bars
            result.quarantined += rejects
            done |= batch_symbols(batch) or {batch.batch_id}  # an empty batch counts once
            ctx.progress("fetch_history", len(done), max(len(requests), len(done)))
        log.send_rest()
    return published


def batch_symbols(batch: HistoryBatch) -> set[str]:
    """The symbols ``batch`` has bars or corporate actions of."""
    return {
        str(s)
        for table in (batch.bars, batch.actions)
        if table.num_rows
        for s in pc.unique(table.column("symbol")).to_pylist()
    }


class _LogRows:
    """The fetch-log rows of one group of requests, each sent once the source has moved on
    from its symbol (a source may send a symbol's records in several batches in a row)."""

    def __init__(
        self, ctx: RunContext, producer: Any, group: list[FetchRequest], kind: str
    ) -> None:
        self._ctx, self._producer = ctx, producer
        log = fetch_log_rows(group, source_name(ctx), kind, ctx.run_id, ctx.now)
        self._rows = dict(per_symbol(log))
        self._current: set[str] = set()

    def send_done(self, symbols: set[str]) -> None:
        """Records of ``symbols`` follow: send the rows of the symbols whose records came
        before them, and that are not among them."""
        if symbols:
            self._send(sorted(self._current - symbols))
            self._current = {symbol for symbol in symbols if symbol in self._rows}

    def send_rest(self) -> None:
        """Send every row not sent yet, in symbol order."""
        self._send(sorted(self._rows))

    def _send(self, symbols: list[str]) -> None:
        source = source_name(self._ctx)
        for symbol in symbols:
            part = self._rows.pop(symbol, None)
            if part is None:
                continue
            headers = history_headers(FETCH_LOG_DATASET, source, f"{symbol}-log", self._ctx.run_id)
            self._producer.send(HISTORY_TOPIC, symbol, encode_table(part), headers)
