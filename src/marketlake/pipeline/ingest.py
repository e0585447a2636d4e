"""Ingestion: source → raw payloads and bus (fetch_history), bus → curated lake (consume).

Both are idempotent: killed at any instant and run again, the lake ends with every record
once. Offsets are committed only after the lake has durably written.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import BARS_1D, CORPORATE_ACTIONS, FETCH_LOG, QUARANTINE, RECONCILIATION
from marketlake.errors import TransientError
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.messages import HISTORY_TOPIC
from marketlake.pipeline.result import StageResult
from marketlake.rows import deduplicate
from marketlake.schemas import BAR_KEYS, BAR_SCHEMA, CORPORATE_ACTION_SCHEMA

LAKE_WRITER_GROUP = "lake-writer"
HISTORY_PARTITIONS = 4
CHUNK_MESSAGES = 2000
STALL_TIMEOUT_S = 30.0


def fetch_history(ctx: RunContext) -> StageResult:
    """Fetch what the lake is missing from the source, keep the raw payloads, publish to the bus.

    Sim and provider sources are fetched incrementally (see
    :mod:`marketlake.pipeline.incremental`): only the sessions each symbol is missing, and a
    symbol with nothing missing not at all. A source with a request budget refuses the whole
    plan before any request. File sources are read whole. What the source notes (the files a
    folder source skipped, an endpoint a provider was refused) ends the stage's summary.
    """
    from marketlake.pipeline.incremental import FETCH, is_incremental, plan_fetches
    from marketlake.pipeline.publish import check_budget, publish_batch, publish_requests

    bus = ctx.bus
    bus.create_topic(HISTORY_TOPIC, HISTORY_PARTITIONS)
    symbols = ctx.symbols
    result = StageResult()
    if not is_incremental(ctx):
        start, end = ctx.date_range
        with bus.producer() as producer:
            for done, batch in enumerate(ctx.source.fetch_history(symbols, start, end), 1):
                bars, rejects = publish_batch(ctx, producer, batch)
                result.rows_out += bars
                result.quarantined += rejects
                ctx.progress("fetch_history", done, max(len(symbols), done))
            producer.flush()
        result.detail["symbols"] = len(symbols)
        _add_notes(result, ctx.source.notes())
        return result
    plan = plan_fetches(ctx)
    check_budget(ctx, plan.requests)
    with bus.producer() as producer:
        result.rows_out = publish_requests(ctx, producer, plan.requests, FETCH, result)
        producer.flush()
    fetched = len(plan.requests)
    result.detail.update(
        symbols=len(symbols),
        symbols_fetched=fetched,
        symbols_up_to_date=len(plan.up_to_date),
        sessions_requested=plan.sessions,
        summary=f"{fetched} symbols fetched ({plan.sessions} sessions), "
        f"{len(plan.up_to_date)} up to date",
    )
    _add_notes(result, ctx.source.notes())
    return result


def _add_notes(result: StageResult, notes: list[str]) -> None:
    """The source's notes (skipped files, an endpoint given up) in the detail and summary."""
    if notes:
        result.detail["notes"] = notes
        result.detail["summary"] = "; ".join(filter(None, [result.detail.get("summary"), *notes]))


def _concat(parts: list[pa.Table], schema: pa.Schema) -> pa.Table:
    if not parts:
        return schema.empty_table()
    return pa.concat_tables([p.cast(schema) for p in parts])


def _drop_redeliveries(
    table: pa.Table, schema: pa.Schema, keys: tuple[str, ...] | None = None
) -> pa.Table:
    """Collapse rows that are the same record delivered twice (only ``ingested_at`` differs).

    A re-run after a kill re-publishes what an earlier attempt already sent; those copies
    are not data problems. Rows that differ in any value stay, for validation to judge.
    With ``keys``, the rows come back sorted by them, and a table whose keys do not repeat
    (the usual case) skips the search for copies.
    """
    import polars as pl

    from marketlake.pipeline.chunks import sorted_unique_keys

    if table.num_rows == 0:
        return table
    if keys is not None:
        table, keys_unique = sorted_unique_keys(table, keys)
        if keys_unique:
            return table
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    value_columns = [c for c in schema.names if c != "ingested_at"]
    unique = frame.unique(subset=value_columns, keep="last", maintain_order=True)
    return unique.to_arrow().cast(schema)


def _stored_bars(ctx: RunContext, symbols: list[str]) -> pa.Table | None:
    """Every stored bar of the chunk's symbols (None when there are none): from the
    handover when this process wrote them last, else from the lake."""
    if not symbols:
        return None
    stored = ctx.handover.take(BARS_1D, symbols)
    if stored is None:
        if not ctx.tables.exists(BARS_1D):
            return None
        stored = ctx.tables.read_symbols(BARS_1D, symbols)
    return stored.select(BAR_SCHEMA.names).cast(BAR_SCHEMA) if stored.num_rows else None


def _previous_bars(stored: pa.Table | None, bars: pa.Table) -> pa.Table | None:
    """The last stored bar of each symbol before this chunk's first bar, for jump checks."""
    import polars as pl

    if stored is None or bars.num_rows == 0:
        return None
    chunk = pl.from_arrow(bars.select(["symbol", "ts"]))
    assert isinstance(chunk, pl.DataFrame)
    firsts = chunk.group_by("symbol").agg(pl.col("ts").min().alias("first_ts"))
    frame = pl.from_arrow(stored)
    assert isinstance(frame, pl.DataFrame)
    previous = (
        frame.join(firsts, on="symbol")
        .filter(pl.col("ts") < pl.col("first_ts"))
        .sort("symbol", "ts")
        .group_by("symbol", maintain_order=True)
        .last()
        .drop("first_ts")
    )
    return previous.to_arrow().cast(BAR_SCHEMA) if previous.height else None


def _count(result: StageResult, counts: dict[str, int]) -> None:
    for rule, count in counts.items():
        result.detail[rule] = result.detail.get(rule, 0) + count


def _write_chunk(ctx: RunContext, tables: dict[str, list[pa.Table]], result: StageResult) -> None:
    """Validate one chunk and merge it: actions, reconciliation flags, bars, fetch log,
    quarantine, in that order (see :mod:`marketlake.pipeline.reconcile` for why flags first)."""
    from marketlake.lake.quarantine import resolve_stored, write_quarantine
    from marketlake.pipeline.chunks import after_merge
    from marketlake.pipeline.curated_actions import marked, read_actions, store_actions
    from marketlake.pipeline.feed_checks import check_feed_actions, check_feed_bars
    from marketlake.pipeline.pending import mark_changed
    from marketlake.pipeline.reconcile import max_source_diff, reconcile_bars
    from marketlake.quality.bars import validate_actions, validate_bars
    from marketlake.schemas import (
        CURATED_ACTION_SCHEMA,
        FETCH_LOG_KEYS,
        FETCH_LOG_SCHEMA,
        QUARANTINE_SCHEMA,
        RECONCILIATION_KEYS,
    )

    bars = _drop_redeliveries(_concat(tables["bars_1d"], BAR_SCHEMA), BAR_SCHEMA, BAR_KEYS)
    actions = _drop_redeliveries(
        _concat(tables["corporate_actions"], CORPORATE_ACTION_SCHEMA), CORPORATE_ACTION_SCHEMA
    )
    # conform: a message an older version published lacks the quarantine's newer columns
    rejects = [_concat([QUARANTINE.conform(t) for t in tables["quarantine"]], QUARANTINE_SCHEMA)]
    result.rows_in += bars.num_rows + actions.num_rows
    bar_symbols = pc.unique(bars.column("symbol")).to_pylist() if bars.num_rows else []
    stored = _stored_bars(ctx, bar_symbols)
    previous = _previous_bars(stored, bars)
    mark_changed(ctx, tables.get("fetch_log", []), bars, stored, actions)

    good_actions, bad_actions = validate_actions(actions)
    rejects.append(bad_actions)
    feed_actions = check_feed_actions(good_actions.cast(CORPORATE_ACTION_SCHEMA), bars, previous)
    good_actions = feed_actions.kept
    rejects.append(feed_actions.rejects)
    ctx.handover.discard(CORPORATE_ACTIONS, store_actions(ctx.tables, marked(good_actions, False)))
    known_actions = (
        read_actions(ctx.tables, bar_symbols)
        if bars.num_rows
        else CURATED_ACTION_SCHEMA.empty_table()
    )

    feed_bars = check_feed_bars(bars, known_actions, previous)
    rejects.append(feed_bars.rejects)
    if feed_bars.inferred.num_rows:
        inferred = marked(feed_bars.inferred, inferred=True)
        store_actions(ctx.tables, inferred)
        known_actions = pa.concat_tables([known_actions, inferred])
        result.detail["inferred_splits"] = (
            result.detail.get("inferred_splits", 0) + inferred.num_rows
        )
    if bars.num_rows:
        ctx.handover.put(CORPORATE_ACTIONS, known_actions, bar_symbols)
    checked = validate_bars(
        feed_bars.kept,
        known_actions,
        sessions=ctx.calendar.days,
        max_daily_jump=ctx.settings.validation.max_daily_jump,
        max_volume=ctx.settings.validation.max_volume,
        previous=stored,
        now=ctx.now,
    )
    rejects.append(checked.rejects)
    reconciled = reconcile_bars(checked.bars, stored, max_source_diff(ctx.settings), ctx.now)
    if reconciled.flagged.num_rows:
        ctx.tables.merge(RECONCILIATION, reconciled.flagged, RECONCILIATION_KEYS)
    written = deduplicate(checked.bars.cast(BAR_SCHEMA), BAR_KEYS)
    ctx.handover.discard(BARS_1D, bar_symbols)
    if written.num_rows:
        ctx.tables.merge(BARS_1D, written, BAR_KEYS)
    ctx.handover.put(BARS_1D, after_merge(stored, written, BAR_KEYS), bar_symbols)
    log = _concat(tables.get("fetch_log", []), FETCH_LOG_SCHEMA)
    if log.num_rows:
        ctx.tables.merge(FETCH_LOG, log, FETCH_LOG_KEYS)
    all_rejects = pa.concat_tables([r.cast(QUARANTINE_SCHEMA) for r in rejects])
    if all_rejects.num_rows:
        write_quarantine(ctx.tables, all_rejects)
    resolved = resolve_stored(ctx.tables, written, good_actions, ctx.now)
    result.detail["quarantine_resolved"] = result.detail.get("quarantine_resolved", 0) + resolved
    result.rows_out += checked.bars.num_rows + good_actions.num_rows
    result.quarantined += all_rejects.num_rows
    _count(result, checked.counts)
    _count(result, feed_actions.counts)
    _count(result, feed_bars.counts)
    result.detail["reconciled"] = result.detail.get("reconciled", 0) + reconciled.compared
    result.detail["reconciliation_flags"] = (
        result.detail.get("reconciliation_flags", 0) + reconciled.flagged.num_rows
    )


def _drain(ctx: RunContext, result: StageResult) -> None:
    """Write every unread history message of this run to the lake, committing after each chunk.

    Messages another run published (one that failed before its lake writer took them) are
    skipped and counted in ``other_runs_skipped``: that run's fetch log never recorded them,
    so its symbols are fetched again by the next run that asks for them.
    """
    from marketlake.pipeline.chunks import symbol_buckets
    from marketlake.pipeline.messages import RUN_HEADER

    bus = ctx.bus
    with bus.consumer(LAKE_WRITER_GROUP, [HISTORY_TOPIC]) as consumer:
        total = consumer.lag()
        done = 0
        last_progress = time.monotonic()
        while True:
            messages = consumer.poll(max_messages=CHUNK_MESSAGES, timeout_s=0.05)
            if not messages:
                if consumer.lag() == 0:
                    break
                if time.monotonic() - last_progress > STALL_TIMEOUT_S:
                    raise TransientError(
                        f"the bus reports {consumer.lag()} unread history messages "
                        f"but delivered none for {STALL_TIMEOUT_S:.0f} s"
                    )
                continue
            own = [m for m in messages if m.headers.get(RUN_HEADER) == ctx.run_id]
            if len(own) < len(messages):
                skipped = result.detail.get("other_runs_skipped", 0)
                result.detail["other_runs_skipped"] = skipped + len(messages) - len(own)
            for chunk in symbol_buckets(own, ctx.settings.runner.bucket_rows):
                _write_chunk(ctx, chunk, result)
            consumer.commit()
            done += len(messages)
            last_progress = time.monotonic()
            ctx.progress("consume_history", done, max(total, done))
            if consumer.lag() == 0:  # caught up: no need to wait out another poll
                break


def _refetch_gaps(ctx: RunContext, result: StageResult) -> None:
    """Ask the source once more for the sessions it did not deliver, and write them."""
    from marketlake.errors import TerminalError
    from marketlake.pipeline.completeness import count_filled, mark_checked, plan_refetch
    from marketlake.pipeline.incremental import REFETCH, is_incremental
    from marketlake.pipeline.publish import check_budget, publish_requests

    if not is_incremental(ctx):
        return
    refetch = plan_refetch(ctx)
    if refetch.requests:
        try:
            check_budget(ctx, refetch.requests)
        except TerminalError as exc:
            result.detail["refetch_skipped"] = str(exc)
        else:
            with ctx.bus.producer() as producer:
                publish_requests(ctx, producer, refetch.requests, REFETCH, StageResult())
                producer.flush()
            _drain(ctx, result)
            result.detail["refetched_sessions"] = refetch.sessions
            result.detail["refetch_filled"] = count_filled(ctx, refetch)
    mark_checked(ctx, refetch)


def consume_history(ctx: RunContext) -> StageResult:
    """Read history from the bus, validate it, and MERGE it into the curated lake tables.

    Offsets are committed after each chunk is in the lake, so a kill between the two only
    causes a redelivery, which the MERGE absorbs. Sessions the source was asked for and did
    not deliver are then re-fetched once (:mod:`marketlake.pipeline.completeness`).
    """
    ctx.bus.create_topic(HISTORY_TOPIC, HISTORY_PARTITIONS)
    result = StageResult()
    _drain(ctx, result)
    _refetch_gaps(ctx, result)
    result.detail.setdefault("refetched_sessions", 0)
    result.detail["summary"] = _consume_summary(result.detail)
    return result


def _consume_summary(detail: dict[str, Any]) -> str:
    """One line for the run summary: re-fetches, reconciliation flags, feed-rule rejects."""
    from marketlake.pipeline.feed_checks import FEED_RULES

    parts = [
        f"{detail['refetched_sessions']} missing sessions re-fetched "
        f"({detail.get('refetch_filled', 0)} filled)",
        f"{detail.get('reconciliation_flags', 0)} reconciliation flags",
    ]
    if detail.get("inferred_splits"):
        parts.append(f"{detail['inferred_splits']} splits inferred from the bars")
    if detail.get("quarantine_resolved"):
        parts.append(f"{detail['quarantine_resolved']} quarantined records resolved")
    feed = [f"{rule} {detail[rule]}" for rule in FEED_RULES if detail.get(rule)]
    if feed:
        parts.append("feed rules: " + ", ".join(feed))
    if detail.get("other_runs_skipped"):
        parts.append(f"{detail['other_runs_skipped']} messages left by other runs skipped")
    return "; ".join(parts)
