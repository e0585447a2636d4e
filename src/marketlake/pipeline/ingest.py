"""Ingestion: source → raw payloads and bus (fetch_history), bus → curated lake (consume).

Both are idempotent: killed at any instant and run again, the lake ends with every record
once. Offsets are committed only after the lake has durably written.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.errors import TransientError
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.lake_names import ACTIONS, BARS
from marketlake.pipeline.messages import (
    DATASET_HEADER,
    HISTORY_TOPIC,
    decode_table,
    encode_table,
    history_headers,
)
from marketlake.pipeline.result import StageResult
from marketlake.schemas import BAR_KEYS, BAR_SCHEMA, CORPORATE_ACTION_KEYS, CORPORATE_ACTION_SCHEMA

LAKE_WRITER_GROUP = "lake-writer"
HISTORY_PARTITIONS = 4
CHUNK_MESSAGES = 2000
STALL_TIMEOUT_S = 30.0


def _per_symbol(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """Split ``table`` (sorted or not) into one table per symbol."""
    if table.num_rows == 0:
        return
    symbols = table.column("symbol")
    unique = pc.unique(symbols)
    if len(unique) == 1:
        yield unique[0].as_py(), table
        return
    table = table.sort_by([("symbol", "ascending")])
    ends = pc.run_end_encode(table.column("symbol").combine_chunks()).run_ends.to_pylist()
    begin = 0
    for end in ends:
        part = table.slice(begin, end - begin)
        yield part.column("symbol")[0].as_py(), part
        begin = end


def fetch_history(ctx: RunContext) -> StageResult:
    """Fetch history from the source, keep the raw payloads, and publish it to the bus."""
    from marketlake.lake.raw import write_raw

    bus = ctx.bus
    bus.create_topic(HISTORY_TOPIC, HISTORY_PARTITIONS)
    start, end = ctx.date_range
    symbols = ctx.symbols
    result = StageResult()
    ingest_date = ctx.now.date()
    with bus.producer() as producer:
        for done, batch in enumerate(ctx.source.fetch_history(symbols, start, end), 1):
            if batch.raw:
                write_raw(
                    ctx.storage,
                    source=batch.source,
                    dataset="bars_1d",
                    batch_id=batch.batch_id,
                    payload=batch.raw,
                    fmt=batch.raw_format,
                    ingest_date=ingest_date,
                )
            for dataset, table in (
                ("bars_1d", batch.bars),
                ("corporate_actions", batch.actions),
                ("quarantine", batch.rejects),
            ):
                for symbol, part in (
                    _per_symbol(table) if dataset != "quarantine" else [(batch.batch_id, table)]
                ):
                    if part.num_rows:
                        headers = history_headers(dataset, batch.source, batch.batch_id)
                        producer.send(HISTORY_TOPIC, symbol, encode_table(part), headers)
            result.rows_out += batch.bars.num_rows
            result.quarantined += batch.rejects.num_rows
            ctx.progress("fetch_history", done, max(len(symbols), done))
        producer.flush()
    result.detail["symbols"] = len(symbols)
    return result


def _decode_chunk(messages: list[Any]) -> dict[str, list[pa.Table]]:
    tables: dict[str, list[pa.Table]] = {"bars_1d": [], "corporate_actions": [], "quarantine": []}
    for message in messages:
        tables.setdefault(message.headers.get(DATASET_HEADER, ""), []).append(
            decode_table(message.value)
        )
    return tables


def _concat(parts: list[pa.Table], schema: pa.Schema) -> pa.Table:
    if not parts:
        return schema.empty_table()
    return pa.concat_tables([p.cast(schema) for p in parts])


def _drop_redeliveries(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Collapse rows that are the same record delivered twice (only ``ingested_at`` differs).

    A re-run after a kill re-publishes what an earlier attempt already sent; those copies
    are not data problems. Rows that differ in any value stay, for validation to judge.
    """
    import polars as pl

    if table.num_rows == 0:
        return table
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    value_columns = [c for c in schema.names if c != "ingested_at"]
    unique = frame.unique(subset=value_columns, keep="last", maintain_order=True)
    return unique.to_arrow().cast(schema)


def _previous_bars(ctx: RunContext, bars: pa.Table) -> pa.Table | None:
    """The last stored bar of each symbol before this chunk's first bar, for jump checks."""
    import polars as pl

    if not ctx.tables.exists(BARS) or bars.num_rows == 0:
        return None
    chunk = pl.from_arrow(bars.select(["symbol", "ts"]))
    assert isinstance(chunk, pl.DataFrame)
    firsts = chunk.group_by("symbol").agg(pl.col("ts").min().alias("first_ts"))
    stored = pl.from_arrow(
        ctx.tables.read(BARS, filter=pc.field("symbol").isin(firsts["symbol"].to_list()))
    )
    assert isinstance(stored, pl.DataFrame)
    previous = (
        stored.join(firsts, on="symbol")
        .filter(pl.col("ts") < pl.col("first_ts"))
        .sort("symbol", "ts")
        .group_by("symbol", maintain_order=True)
        .last()
        .drop("first_ts")
    )
    return previous.to_arrow().cast(BAR_SCHEMA) if previous.height else None


def _write_chunk(ctx: RunContext, tables: dict[str, list[pa.Table]], result: StageResult) -> None:
    from marketlake.lake.quarantine import write_quarantine
    from marketlake.quality.bars import validate_actions, validate_bars
    from marketlake.schemas import QUARANTINE_SCHEMA

    bars = _drop_redeliveries(_concat(tables["bars_1d"], BAR_SCHEMA), BAR_SCHEMA)
    actions = _drop_redeliveries(
        _concat(tables["corporate_actions"], CORPORATE_ACTION_SCHEMA), CORPORATE_ACTION_SCHEMA
    )
    rejects = [_concat(tables["quarantine"], QUARANTINE_SCHEMA)]
    result.rows_in += bars.num_rows + actions.num_rows

    good_actions, bad_actions = validate_actions(actions)
    good_actions = good_actions.cast(CORPORATE_ACTION_SCHEMA)
    rejects.append(bad_actions)
    if good_actions.num_rows:
        ctx.tables.merge(ACTIONS, good_actions, CORPORATE_ACTION_KEYS)
    known_actions = good_actions
    if ctx.tables.exists(ACTIONS) and bars.num_rows:
        symbols = pc.unique(bars.column("symbol")).to_pylist()
        known_actions = ctx.tables.read(ACTIONS, filter=pc.field("symbol").isin(symbols))

    checked = validate_bars(
        bars,
        known_actions.cast(CORPORATE_ACTION_SCHEMA),
        sessions=ctx.calendar.days,
        max_daily_jump=ctx.settings.validation.max_daily_jump,
        previous=_previous_bars(ctx, bars),
        now=ctx.now,
    )
    rejects.append(checked.rejects)
    if checked.bars.num_rows:
        ctx.tables.merge(BARS, checked.bars.cast(BAR_SCHEMA), BAR_KEYS)
    all_rejects = pa.concat_tables([r.cast(QUARANTINE_SCHEMA) for r in rejects])
    if all_rejects.num_rows:
        write_quarantine(ctx.tables, all_rejects)
    result.rows_out += checked.bars.num_rows + good_actions.num_rows
    result.quarantined += all_rejects.num_rows
    for rule, count in checked.counts.items():
        result.detail[rule] = result.detail.get(rule, 0) + count


def consume_history(ctx: RunContext) -> StageResult:
    """Read history from the bus, validate it, and MERGE it into the curated lake tables.

    Offsets are committed after each chunk is in the lake, so a kill between the two only
    causes a redelivery, which the MERGE absorbs.
    """
    bus = ctx.bus
    bus.create_topic(HISTORY_TOPIC, HISTORY_PARTITIONS)
    result = StageResult()
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
            _write_chunk(ctx, _decode_chunk(messages), result)
            consumer.commit()
            done += len(messages)
            last_progress = time.monotonic()
            ctx.progress("consume_history", done, max(total, done))
    return result
