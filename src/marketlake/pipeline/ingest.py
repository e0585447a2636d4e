"""Ingestion: source → raw payloads and bus (fetch_history), bus → curated lake (consume).

Both are idempotent: killed at any instant and run again, the lake ends with every record
once. Offsets are committed only after the lake has durably written.
"""

from __future__ import annotations

import time
from typing import Any

from marketlake.errors import TransientError
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.messages import HISTORY_TOPIC
from marketlake.pipeline.result import StageResult

LAKE_WRITER_GROUP = "lake-writer"
HISTORY_PARTITIONS = 4
CHUNK_MESSAGES = 2000
FIRST_POLL_MESSAGES = 256  # before the size of a message is known
POLL_BYTES = 128 * 2**20
"""About how many payload bytes one poll of the lake writer holds. A history message carries
one symbol's bars of one request, so 2,000 messages of 30 years each held 15 M bars (about
1 GB); the writer sizes each poll by the mean size of the messages of the poll before."""
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
        stored = _stored_counts(ctx)
        with bus.producer() as producer:
            for done, batch in enumerate(ctx.source.fetch_history(symbols, start, end), 1):
                bars, rejects = publish_batch(ctx, producer, batch, stored=stored)
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


def _stored_counts(ctx: RunContext) -> dict[str, int]:
    """Each run symbol's stored bars, for the lake writer's buckets (see
    :data:`marketlake.pipeline.messages.STORED_HEADER`): an import of the day's file for
    many symbols brings one bar each, but the writer reads every stored bar beside it."""
    from marketlake.catalogue import BARS_1D

    if not ctx.tables.exists(BARS_1D):
        return {}
    return ctx.tables.symbol_counts(BARS_1D, ctx.symbols)


def _add_notes(result: StageResult, notes: list[str]) -> None:
    """The source's notes (skipped files, an endpoint given up) in the detail and summary."""
    if notes:
        result.detail["notes"] = notes
        result.detail["summary"] = "; ".join(filter(None, [result.detail.get("summary"), *notes]))


def _drain(ctx: RunContext, result: StageResult) -> None:
    """Write every unread history message of this run to the lake, committing the offsets
    once about :data:`POLL_BYTES` of messages are in it, and at the end.

    Messages another run published (one that failed before its lake writer took them) are
    skipped and counted in ``other_runs_skipped``: that run's fetch log never recorded them,
    so its symbols are fetched again by the next run that asks for them.
    """
    from marketlake.pipeline.chunks import symbol_buckets
    from marketlake.pipeline.lake_writer import LakeWriter
    from marketlake.pipeline.messages import RUN_HEADER

    bus = ctx.bus
    with (
        bus.consumer(LAKE_WRITER_GROUP, [HISTORY_TOPIC]) as consumer,
        LakeWriter(ctx, result) as writer,
    ):
        total = consumer.lag()
        if total == 0:  # nothing unread (the lag is the group's, over every partition)
            return
        done = uncommitted = 0  # messages polled; bytes polled since the last commit
        last_progress = time.monotonic()
        limit = FIRST_POLL_MESSAGES
        while True:
            messages = consumer.poll(max_messages=limit, timeout_s=0.05)
            if messages:
                limit = poll_limit(messages)
            else:
                if uncommitted:
                    writer.wait()
                    consumer.commit()
                    uncommitted = 0
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
                writer.write(chunk)
            done += len(messages)
            uncommitted += sum(len(m.value) for m in messages)
            last_progress = time.monotonic()
            ctx.progress("consume_history", done, max(total, done))
            # the next poll is read and checked while this one's last chunk is committed;
            # offsets commit once about POLL_BYTES are in the lake, or at the end
            if uncommitted >= POLL_BYTES or done >= total:
                writer.wait()  # every chunk polled in the lake before the offsets commit
                consumer.commit()
                uncommitted = 0
                if consumer.lag() == 0:  # caught up: no need to wait out another poll
                    break


def poll_limit(messages: list[Any]) -> int:
    """How many messages the next poll may take: about :data:`POLL_BYTES` of messages the
    size of ``messages``, at least 1 and at most :data:`CHUNK_MESSAGES`."""
    mean = sum(len(m.value) for m in messages) / len(messages)
    return max(1, min(CHUNK_MESSAGES, int(POLL_BYTES / max(mean, 1.0))))


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

    Offsets are committed once the chunks polled are in the lake, so a kill between the two
    only causes a redelivery, which the MERGE absorbs. Sessions the source was asked for and did
    not deliver are then re-fetched once (:mod:`marketlake.pipeline.completeness`).
    """
    ctx.bus.create_topic(HISTORY_TOPIC, HISTORY_PARTITIONS)
    result = StageResult()
    _drain(ctx, result)
    _refetch_gaps(ctx, result)
    result.detail.setdefault("refetched_sessions", 0)
    result.detail["on_conflict"] = ctx.settings.validation.on_conflict
    result.detail["summary"] = _consume_summary(result.detail)
    return result


def _consume_summary(detail: dict[str, Any]) -> str:
    """One line for the run summary: re-fetches, reconciliation flags, feed-rule rejects."""
    from marketlake.pipeline.feed_checks import FEED_RULES

    flags = detail.get("reconciliation_flags", 0)
    findings = f"{flags} reconciliation flags"
    if flags:
        findings += (
            f" ({detail.get('conflicting_bars', 0)} stored bars contradicted by another origin, "
            f"on_conflict {detail.get('on_conflict', 'keep')}: see the reconciliation table)"
        )
    parts = [
        f"{detail['refetched_sessions']} missing sessions re-fetched "
        f"({detail.get('refetch_filled', 0)} filled)",
        findings,
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
