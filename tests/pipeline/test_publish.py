"""Raw payloads before records: several batches' payloads are written at once, and each
batch still comes out in order, only once its own payload is stored."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from marketlake.errors import TerminalError
from marketlake.lake.raw import list_raw, raw_name, raw_path, read_raw
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.plan import plan_run
from marketlake.pipeline.publish import RAW_PENDING_BYTES, raw_kept
from marketlake.settings import load_settings
from marketlake.sources.base import HistoryBatch
from marketlake.sources.sim import SimSource

SYMBOLS = ["AAPL", "MSFT", "TSLA", "NVDA", "INTC", "JPM", "V"]


def run_context(home: Path) -> RunContext:
    """A real run context of a sim run of :data:`SYMBOLS` under ``home``."""
    settings = load_settings(home=home, symbols=",".join(SYMBOLS))
    source = SimSource()
    return RunContext(settings, plan_run(settings, source), source=source)


def one_batch_each(start: date, end: date) -> list[HistoryBatch]:
    """A batch per symbol of ``SYMBOLS`` (as a source fetching symbol by symbol gives)."""
    return [b for s in SYMBOLS for b in SimSource().fetch_history([s], start, end)]


def stored_at(ctx: RunContext, batch: HistoryBatch) -> str:
    """Where ``batch``'s raw payload is stored, relative to the lake."""
    return raw_path(batch.source, "bars_1d", raw_name(batch.batch_id), "json", ctx.now.date())


@pytest.mark.parametrize("writers", [1, 3, 16])
def test_batches_come_out_in_order_each_after_its_raw_payload(tmp_path: Path, writers: int) -> None:
    ctx = run_context(tmp_path / "home")
    batches = one_batch_each(date(2024, 1, 1), date(2024, 3, 29))
    produced: list[str] = []

    def source() -> Iterator[HistoryBatch]:
        for batch in batches:
            produced.append(batch.batch_id)
            yield batch

    out = []
    for batch in raw_kept(ctx, source(), writers=writers):
        assert ctx.storage.exists(stored_at(ctx, batch))  # stored before the caller publishes it
        # at most ``writers`` batches are fetched ahead of the one handed out
        assert len(produced) - len(out) <= max(writers, 1) + 1
        out.append(batch)
    assert [b.batch_id for b in out] == [b.batch_id for b in batches]
    stored = list_raw(ctx.storage, "sim", "bars_1d")
    assert len(stored) == len(batches)
    for batch in batches:
        assert read_raw(ctx.storage, stored_at(ctx, batch)) == bytes(batch.raw)


def test_large_batches_are_held_two_at_most(tmp_path: Path) -> None:
    """Batches whose payloads pass the pending bytes are stored one or two at a time;
    small ones, up to ``writers`` at a time."""
    ctx = run_context(tmp_path / "home")
    small = one_batch_each(date(2024, 1, 1), date(2024, 1, 31))
    pad = b" " * (RAW_PENDING_BYTES // 2 + 1)  # whitespace: the payload stays the same JSON
    large = [replace(b, raw=b.raw[:-1] + pad + b.raw[-1:]) for b in small]

    def produced_when_handed_out(batches: list[HistoryBatch]) -> list[int]:
        produced: list[str] = []

        def source() -> Iterator[HistoryBatch]:
            for batch in batches:
                produced.append(batch.batch_id)
                yield batch

        return [len(produced) for _ in raw_kept(ctx, source(), writers=4)]

    n = len(small)
    assert produced_when_handed_out(small)[0] == 5  # four being stored and the next
    assert produced_when_handed_out(large) == [*range(2, n + 1), n]


def test_a_failed_raw_write_stops_the_batches(tmp_path: Path) -> None:
    ctx = run_context(tmp_path / "home")
    batches = one_batch_each(date(2024, 1, 1), date(2024, 1, 31))
    bad = HistoryBatch(
        source="sim", batch_id="bad", bars=batches[0].bars, raw=b"{}", raw_format="?"
    )
    out = []
    with pytest.raises(TerminalError, match="invalid raw format"):
        for batch in raw_kept(ctx, iter([*batches[:2], bad, *batches[2:]]), writers=4):
            out.append(batch)
    assert [b.batch_id for b in out] == [b.batch_id for b in batches[:2]]


def test_each_fetch_log_row_follows_its_symbols_records_before_the_next_symbol(
    tmp_path: Path,
) -> None:
    """In every partition a symbol's records and then its fetch-log row come as one run, so
    a poll of the lake writer mostly holds a symbol's log row with its bars; the row never
    precedes a record of its symbol."""
    from itertools import groupby

    from marketlake.pipeline.ingest import fetch_history
    from marketlake.pipeline.messages import DATASET_HEADER, HISTORY_TOPIC
    from marketlake.pipeline.publish import FETCH_LOG_DATASET

    ctx = run_context(tmp_path / "home")
    fetch_history(ctx)
    with ctx.bus.consumer("reader", [HISTORY_TOPIC]) as consumer:
        messages = consumer.poll(max_messages=10_000, timeout_s=1.0)
    ctx.close()
    assert {m.key for m in messages} == set(SYMBOLS)
    for partition in {m.partition for m in messages}:
        mine = sorted((m for m in messages if m.partition == partition), key=lambda m: m.offset)
        runs = [
            (key, [m.headers[DATASET_HEADER] for m in run])
            for key, run in groupby(mine, key=lambda m: m.key)
        ]
        assert len(runs) == len({key for key, _ in runs}), runs  # one run per symbol
        for key, datasets in runs:
            assert datasets[-1] == FETCH_LOG_DATASET and datasets.count(FETCH_LOG_DATASET) == 1
            assert "bars_1d" in datasets, key
