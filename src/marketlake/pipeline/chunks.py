"""The lake writer's units of work: polled history messages in buckets of whole symbols.

A poll of the bus can hold thousands of symbols' history; the lake writer validates and
merges it in equal buckets of about ``max_rows`` rows (at most a quarter more), each
holding every message of its symbols (a symbol's bars, corporate actions and fetch-log row
stay together and in order), so memory is bounded by the bucket, not by the poll. Buckets
take symbols in sorted order, so the files a bucket writes cover a narrow range of symbols
and later reads can skip them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from marketlake.pipeline.messages import DATASET_HEADER, STORED_HEADER, decode_table

Chunk = dict[str, list[pa.Table]]


def _empty_chunk() -> Chunk:
    return {"bars_1d": [], "corporate_actions": [], "quarantine": []}


def symbol_buckets(messages: Sequence[Any], max_rows: int) -> Iterator[Chunk]:
    """The decoded ``messages`` grouped by key (symbol), in equal buckets of about
    ``max_rows`` rows (see :func:`even_share`).

    A symbol weighs the rows of its messages plus the bars the lake holds for it (the
    ``stored`` header of its bars messages), since the writer reads those beside them: a
    daily run brings one bar per symbol, and weighing the messages alone put every symbol,
    with all its stored history, in one bucket. Messages of one key keep their order and
    are never split across buckets.
    """
    by_key: dict[str, list[tuple[str, pa.Table]]] = {}
    stored: dict[str, int] = {}
    weight: dict[str, int] = {}
    for message in messages:
        table = decode_table(message.value)
        by_key.setdefault(message.key, []).append((message.headers.get(DATASET_HEADER, ""), table))
        weight[message.key] = weight.get(message.key, 0) + table.num_rows
        stored[message.key] = max(stored.get(message.key, 0), _stored(message.headers))
    for key, count in stored.items():
        weight[key] += count
    chunk, rows = _empty_chunk(), 0
    target = even_share(sum(weight.values()), max_rows)
    for key in sorted(by_key):
        if rows >= target:
            yield chunk
            chunk, rows = _empty_chunk(), 0
        rows += weight[key]
        for dataset, table in by_key[key]:
            chunk.setdefault(dataset, []).append(table)
    if rows or any(chunk.values()):
        yield chunk


BUCKET_SLACK = 1.25
"""How far past ``max_rows`` a bucket may grow so that a poll splits into equal buckets."""


def even_share(total: int, max_rows: int) -> float:
    """The rows per bucket that split ``total`` into the fewest equal buckets of at most
    :data:`BUCKET_SLACK` times ``max_rows``: a poll of 1.02 M bars with ``max_rows`` 500,000
    makes two buckets of 510,000, not 500,000, 500,000 and 20,000 (each bucket costs its own
    commits)."""
    buckets = max(1, math.ceil(total / (max_rows * BUCKET_SLACK)))
    return total / buckets


def _stored(headers: dict[str, str]) -> int:
    """The ``stored`` header as a count (0 when absent or not a count)."""
    value = headers.get(STORED_HEADER, "")
    return int(value) if value.isdigit() else 0


def sorted_unique_keys(table: pa.Table, keys: Sequence[str]) -> tuple[pa.Table, bool]:
    """``table`` sorted by ``keys`` (stable) and whether no key repeats.

    Rows of one key keep their relative order, so "the last delivery wins" still holds.
    Rows already in key order (a bucket's messages arrive grouped by symbol, each in date
    order) are returned as they are, after one pass over the key columns.
    """
    import pyarrow.compute as pc

    from marketlake.rows import compare_neighbours

    if table.num_rows < 2:
        return table, True
    ordered, same = compare_neighbours(table, keys)
    if not pc.all(ordered).as_py():
        table = table.take(pc.sort_indices(table, [(key, "ascending") for key in keys]))
        _, same = compare_neighbours(table, keys)
    return table, not pc.any(same).as_py()


def after_merge(stored: pa.Table | None, written: pa.Table, keys: Sequence[str]) -> pa.Table:
    """The rows a table holds for some symbols after ``written`` was merged on ``keys`` into
    their ``stored`` rows (``written`` has unique keys): stored rows not replaced, then
    ``written``."""
    import polars as pl

    if stored is None or stored.num_rows == 0:
        return written
    if written.num_rows == 0:
        return stored
    kept = pl.from_arrow(stored)
    new = pl.from_arrow(written.select(list(keys)))
    assert isinstance(kept, pl.DataFrame) and isinstance(new, pl.DataFrame)
    left = kept.join(new, on=list(keys), how="anti").to_arrow()
    return pa.concat_tables([left.cast(written.schema), written])


def split_by_stored(
    written: pa.Table, stored: pa.Table, keys: Sequence[str]
) -> tuple[pa.Table, pa.Table]:
    """``written`` (unique keys) as the rows whose key ``stored`` lacks, and the rows whose
    key it holds with other values in some column (what a MERGE would update); rows that
    ``stored`` holds as they are are in neither."""
    import polars as pl

    new = pl.from_arrow(written)
    old = pl.from_arrow(stored.select(written.column_names).cast(written.schema))
    assert isinstance(new, pl.DataFrame) and isinstance(old, pl.DataFrame)
    key_list = list(keys)
    # only stored rows with a written key matter: a day's bars meet a few rows per symbol,
    # not the symbols' whole stored history, in the joins below
    old = old.join(new.select(key_list), on=key_list, how="semi")
    others = [c for c in written.column_names if c not in key_list]
    absent = new.join(old.select(key_list), on=key_list, how="anti")
    both = new.join(old, on=key_list, how="inner", suffix="__stored")
    differs = pl.lit(False)
    for column in others:
        differs = differs | pl.col(column).ne_missing(pl.col(f"{column}__stored"))
    changed = both.filter(differs).select(written.column_names)
    return absent.to_arrow().cast(written.schema), changed.to_arrow().cast(written.schema)
