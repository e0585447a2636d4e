"""The lake writer sizes its polls of the bus by the size of the messages, and its buckets by
what each symbol brings and what the lake holds for it: however the work is cut, the curated
lake ends the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketlake.catalogue import BARS_1D, CORPORATE_ACTIONS
from marketlake.pipeline import ingest
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.plan import plan_run
from marketlake.settings import load_settings
from marketlake.sources.sim import SimSource

SYMBOLS = "AAPL,MSFT,TSLA,NVDA"


def ingested(home: Path) -> dict[str, list[tuple[object, ...]]]:
    """fetch_history and consume_history of a sim run under ``home``; the curated rows."""
    settings = load_settings(home=home, symbols=SYMBOLS, start="2023-01-02", end="2024-06-28")
    source = SimSource()
    ctx = RunContext(settings, plan_run(settings, source), source=source)
    try:
        ingest.fetch_history(ctx)
        consumed = ingest.consume_history(ctx)
        assert consumed.rows_out > 0
        return {
            dataset.name: sorted(
                tuple(row[c] for c in ("symbol", *columns))
                for row in ctx.tables.read(dataset).to_pylist()
            )
            for dataset, columns in [
                (BARS_1D, ("ts", "open", "high", "low", "close", "volume")),
                (CORPORATE_ACTIONS, ("ex_date", "kind")),
            ]
        }
    finally:
        ctx.close()


def test_polls_of_one_message_each_land_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = ingested(tmp_path / "whole")
    polls: list[int] = []
    limit = ingest.poll_limit

    def one_at_a_time(messages: list[object]) -> int:
        polls.append(len(messages))
        return min(limit(messages), 1)

    monkeypatch.setattr(ingest, "FIRST_POLL_MESSAGES", 1)
    monkeypatch.setattr(ingest, "poll_limit", one_at_a_time)
    single = ingested(tmp_path / "single")
    assert set(polls) == {1} and len(polls) > len(SYMBOLS.split(","))
    assert single == whole
    assert len(whole[BARS_1D.name]) > 1000


@pytest.mark.parametrize(("poll_bytes", "commits"), [(1, "every poll"), (2**40, "once")])
def test_offsets_commit_only_once_every_message_polled_is_in_the_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, poll_bytes: int, commits: str
) -> None:
    """The next poll is read while the last chunk commits, so the offsets of several polls
    may commit together (about POLL_BYTES of messages); whenever they commit, the lake holds
    every bar of every message polled before."""
    from marketlake.bus.local.consumer import LocalConsumer
    from marketlake.pipeline.messages import DATASET_HEADER, decode_table

    seen: list[tuple[int, int]] = []  # (bars polled, bars in the lake) at each commit
    polled = [0]
    poll, commit = LocalConsumer.poll, LocalConsumer.commit
    contexts: list[RunContext] = []

    def counting_poll(self: LocalConsumer, *args: object, **kwargs: object) -> list[object]:
        messages = poll(self, *args, **kwargs)  # type: ignore[arg-type]
        bars = [m for m in messages if m.headers.get(DATASET_HEADER) == BARS_1D.name]
        polled[0] += sum(decode_table(m.value).num_rows for m in bars)
        return messages  # type: ignore[return-value]

    def checked_commit(self: LocalConsumer) -> None:
        ctx = contexts[0]
        held = ctx.tables.read(BARS_1D).num_rows if ctx.tables.exists(BARS_1D) else 0
        seen.append((polled[0], held))
        commit(self)

    monkeypatch.setattr(ingest, "FIRST_POLL_MESSAGES", 2)
    monkeypatch.setattr(ingest, "POLL_BYTES", poll_bytes)
    monkeypatch.setattr(LocalConsumer, "poll", counting_poll)
    monkeypatch.setattr(LocalConsumer, "commit", checked_commit)
    settings = load_settings(
        home=tmp_path,
        symbols=SYMBOLS,
        start="2023-01-02",
        end="2024-06-28",
        runner={"bucket_rows": 100},
    )
    source = SimSource()
    ctx = RunContext(settings, plan_run(settings, source), source=source)
    contexts.append(ctx)
    try:
        ingest.fetch_history(ctx)
        ingest.consume_history(ctx)
        stored = ctx.tables.read(BARS_1D).num_rows
    finally:
        ctx.close()
    assert seen and seen[-1] == (stored, stored) and stored > 0
    for bars_polled, held in seen:
        assert held >= bars_polled
    assert (len(seen) > 2) if commits == "every poll" else (len(seen) == 1)


def test_the_poll_limit_follows_the_size_of_the_messages() -> None:
    """About POLL_BYTES of messages like the last poll's, between 1 and CHUNK_MESSAGES."""

    class Sized:
        def __init__(self, size: int) -> None:
            self.value = bytes(size)

    assert ingest.poll_limit([Sized(100)]) == ingest.CHUNK_MESSAGES
    mean = ingest.POLL_BYTES // 10
    assert ingest.poll_limit([Sized(mean - 1), Sized(mean + 1)]) == 10
    assert ingest.poll_limit([Sized(ingest.POLL_BYTES * 3)]) == 1


def test_a_daily_run_writes_its_bars_in_buckets_of_stored_bars(tmp_path: Path) -> None:
    """One new bar per symbol, each with its whole stored history read beside it: the lake
    writer buckets symbols by both, so its memory follows ``runner.bucket_rows``, not the
    number of symbols; the lake ends the same as with one bucket."""

    def run(home: Path, end: str, bucket_rows: int) -> RunContext:
        settings = load_settings(
            home=home,
            symbols=SYMBOLS,
            start="2023-01-02",
            end=end,
            runner={"bucket_rows": bucket_rows},
        )
        source = SimSource()
        ctx = RunContext(settings, plan_run(settings, source), source=source)
        ingest.fetch_history(ctx)
        ingest.consume_history(ctx)
        return ctx

    lakes = {}
    for bucket_rows in (300, 1_000_000):  # under one symbol's stored bars, and above all
        home = tmp_path / str(bucket_rows)
        first = run(home, "2024-06-27", 1_000_000)
        before = len(first.tables.history(BARS_1D))
        per_symbol = first.tables.read(BARS_1D).num_rows // 4
        first.close()
        daily = run(home, "2024-06-28", bucket_rows)
        commits = len(daily.tables.history(BARS_1D)) - before
        bars = daily.tables.read(BARS_1D).select(["symbol", "ts", "close"])
        daily.close()
        assert per_symbol > bucket_rows or bucket_rows > 4 * per_symbol
        assert bars.num_rows == 4 * (per_symbol + 1)
        lakes[bucket_rows] = (commits, sorted(tuple(r.values()) for r in bars.to_pylist()))
    assert lakes[300][0] == 4  # a bucket per symbol
    assert lakes[1_000_000][0] == 1
    assert lakes[300][1] == lakes[1_000_000][1]


def test_a_file_of_one_new_day_is_written_in_buckets_of_stored_bars(tmp_path: Path) -> None:
    """The same for an import: a file holding one new day of every symbol."""
    import datetime as dt

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from marketlake.sources.files import FileSource
    from marketlake.sources.sim import simulate_bars

    bars, _ = simulate_bars(SYMBOLS.split(","), dt.date(2023, 1, 2), dt.date(2024, 6, 28))
    bars = bars.select(["symbol", "ts", "open", "high", "low", "close", "volume"])
    last = pc.max(bars.column("ts"))
    history, day = tmp_path / "history.parquet", tmp_path / "day.parquet"
    pq.write_table(bars.filter(pc.less(bars.column("ts"), last)), history)
    pq.write_table(bars.filter(pc.equal(bars.column("ts"), last)), day)

    def run(home: Path, path: Path, bucket_rows: int) -> RunContext:
        settings = load_settings(
            home=home,
            source="parquet",
            sources={"files": {"path": path}},
            runner={"bucket_rows": bucket_rows},
        )
        source = FileSource(path)
        spec = plan_run(settings, source, symbols_explicit=False)
        ctx = RunContext(settings, spec, source=source)
        ingest.fetch_history(ctx)
        ingest.consume_history(ctx)
        return ctx

    lakes = {}
    for bucket_rows in (300, 1_000_000):
        home = tmp_path / str(bucket_rows)
        first = run(home, history, 1_000_000)
        before = len(first.tables.history(BARS_1D))
        first.close()
        daily = run(home, day, bucket_rows)
        commits = len(daily.tables.history(BARS_1D)) - before
        stored = daily.tables.read(BARS_1D).select(["symbol", "ts", "close"])
        daily.close()
        assert stored.num_rows == bars.num_rows
        lakes[bucket_rows] = (commits, sorted(tuple(r.values()) for r in stored.to_pylist()))
    assert lakes[300][0] == 4
    assert lakes[1_000_000][0] == 1
    assert lakes[300][1] == lakes[1_000_000][1]


def test_a_lake_writer_killed_after_a_symbols_first_message_loses_none_of_its_actions(
    tmp_path: Path,
) -> None:
    """A poll may end between a symbol's messages. The lake writer that stored the first and
    committed its offset, then died, leaves the rest on the bus for a run the next run skips;
    that run fetches again whatever the lake does not hold, so the first message must never
    be one whose records make the symbol look delivered without the others."""
    from marketlake.pipeline.chunks import symbol_buckets
    from marketlake.pipeline.lake_writer import LakeWriter
    from marketlake.pipeline.messages import HISTORY_TOPIC
    from marketlake.pipeline.result import StageResult

    def run_context(home: Path) -> RunContext:
        settings = load_settings(home=home, symbols="AAPL", start="2021-01-04", end="2023-12-29")
        return RunContext(settings, plan_run(settings, SimSource()), source=SimSource())

    whole = ingested_actions(run_context(tmp_path / "whole"))
    assert whole > 0

    killed = run_context(tmp_path / "killed")
    try:
        ingest.fetch_history(killed)
        group = killed.bus.consumer(ingest.LAKE_WRITER_GROUP, [HISTORY_TOPIC])
        with group as consumer, LakeWriter(killed, StageResult()) as writer:
            (first,) = consumer.poll(max_messages=1, timeout_s=5.0)
            for chunk in symbol_buckets([first], killed.settings.runner.bucket_rows):
                writer.write(chunk)
            writer.wait()
            consumer.commit()  # then the process dies: the rest stays unread
    finally:
        killed.close()
    assert ingested_actions(run_context(tmp_path / "killed")) == whole


def ingested_actions(ctx: RunContext) -> int:
    """The corporate actions in the lake once ``ctx``'s run has fetched and consumed."""
    try:
        ingest.fetch_history(ctx)
        ingest.consume_history(ctx)
        stored = ctx.tables.exists(CORPORATE_ACTIONS)
        return ctx.tables.read(CORPORATE_ACTIONS).num_rows if stored else 0
    finally:
        ctx.close()
