"""Symbols whose derived datasets are out of date: marked by the lake writer, cleared by
``process``.

Before the lake writer merges a chunk, it marks the chunk's symbols that bring anything new
(a bar or corporate action not stored with the same values, or a fetch-log row: a span was
asked for, so its missing sessions may have changed) in a small file under
``_pending/process/`` in the lake. ``process`` recomputes the run's symbols that are marked
or have no derived rows yet, and unmarks them once their derived rows are written. A symbol
with nothing new is neither recomputed nor rewritten.

Marks are written before the merge and cleared after the derived rows, so a run killed
anywhere in between leaves the symbol marked and the next run's ``process`` recomputes it.
Marks are plain lake files, so a ``process`` stage in another process (``--stage``) sees them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import CORPORATE_ACTIONS
from marketlake.schemas import BAR_KEYS, CORPORATE_ACTION_KEYS

if TYPE_CHECKING:
    from marketlake.lake.storage import LakeStorage
    from marketlake.pipeline.context import RunContext

PENDING_ROOT = "_pending/process"


def new_rows_symbols(incoming: pa.Table, stored: pa.Table | None, keys: Sequence[str]) -> set[str]:
    """Symbols of ``incoming`` rows that ``stored`` does not hold with the same values
    (``ingested_at`` aside: a redelivery of the same record is nothing new).

    ``stored`` is first cut to the rows with an incoming row's ``keys``: a run that brings
    one new session compares a few rows per symbol, not every stored bar of the symbol."""
    import polars as pl

    if incoming.num_rows == 0:
        return set()
    columns = [name for name in incoming.schema.names if name != "ingested_at"]
    if stored is None or stored.num_rows == 0:
        return set(pc.unique(incoming.column("symbol")).to_pylist())
    new = pl.from_arrow(incoming.select(columns))
    old = pl.from_arrow(stored.select(columns).cast(incoming.select(columns).schema))
    assert isinstance(new, pl.DataFrame) and isinstance(old, pl.DataFrame)
    old = old.join(new.select(list(keys)), on=list(keys), how="semi", nulls_equal=True)
    fresh = new.join(old, on=columns, how="anti", nulls_equal=True)
    return set(fresh["symbol"].unique().to_list())


def mark(storage: LakeStorage, run_id: str, symbols: Iterable[str]) -> None:
    """Record that ``symbols`` need their derived datasets recomputed."""
    names = sorted(set(symbols))
    if names:
        path = f"{PENDING_ROOT}/{run_id}-{uuid.uuid4().hex[:12]}.json"
        storage.write_bytes(path, json.dumps(names).encode())


def mark_changed(
    ctx: RunContext,
    fetch_logs: Sequence[pa.Table],
    bars: pa.Table,
    stored: pa.Table | None,
    actions: pa.Table,
) -> None:
    """Mark the symbols of a lake-writer chunk that bring anything new, before it is merged:
    ``bars`` not in ``stored`` (the chunk symbols' stored bars), ``actions`` not stored, and
    the symbols of ``fetch_logs`` rows."""
    changed = new_rows_symbols(bars, stored, BAR_KEYS)
    if actions.num_rows:
        symbols = pc.unique(actions.column("symbol")).to_pylist()
        known = None
        if ctx.tables.exists(CORPORATE_ACTIONS):
            known = ctx.tables.read_symbols(CORPORATE_ACTIONS, symbols)
        changed |= new_rows_symbols(actions, known, CORPORATE_ACTION_KEYS)
    for log in fetch_logs:
        changed.update(log.column("symbol").to_pylist())
    mark(ctx.storage, ctx.run_id, changed)


@dataclass
class Pending:
    """The marked symbols, and the mark files each came from."""

    symbols: set[str]
    files: dict[str, list[str]]


def read_pending(storage: LakeStorage) -> Pending:
    """Every symbol marked out of date, from every mark file."""
    files: dict[str, list[str]] = {}
    for path in storage.list_files(PENDING_ROOT):
        if path.endswith(".json"):
            files[path] = list(json.loads(storage.read_bytes(path).decode()))
    symbols = {symbol for names in files.values() for symbol in names}
    return Pending(symbols, files)


def clear(storage: LakeStorage, pending: Pending, done: Sequence[str]) -> None:
    """Unmark ``done`` (their derived rows are written): each mark file loses them, and is
    deleted once it names no symbol."""
    finished = set(done)
    for path, names in pending.files.items():
        left = [name for name in names if name not in finished]
        if len(left) == len(names):
            continue
        if left:
            storage.write_bytes(path, json.dumps(left).encode())
        else:
            storage.delete(path)
