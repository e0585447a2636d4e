"""Rejected records as data: the one place quarantine rows are built.

Every quarantine row (batch checks, source adapters, provider files, the stream) keeps the
rejected record as compact JSON with sorted keys and ISO timestamps; ``record_id`` is the SHA-1
of the dataset name, a newline and that JSON without ``ingested_at`` (when a copy was received
is not part of what the record says). The same record of the same dataset therefore always
gets the same id, so a re-run, or the same bad row fetched again, finds the row it quarantined
before.

Rows are built from a table of rejected rows (:func:`quarantine_rows`) or from records refused
one at a time (:class:`Reject`, :func:`reject_table`). This module sits below the sources, the
quality checks and the stream, so none of them imports another; writing and reading the
quarantine lake tables is :mod:`marketlake.lake.quarantine`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from marketlake.errors import TerminalError
from marketlake.schemas import QUARANTINE_SCHEMA, UTC_US

_DATASET = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _jsonable(value: Any) -> Any:
    """A JSON-safe form of one Arrow value (non-finite floats become strings)."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def record_json(row: Mapping[str, Any]) -> str:
    """``row`` as compact JSON with sorted keys and ISO timestamps.

    Non-finite floats are written as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
    """
    return json.dumps(
        _jsonable(row), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def record_id(dataset: str, record: str) -> str:
    """The stable id of a quarantined record: SHA-1 of ``dataset + "\\n" + record``."""
    return hashlib.sha1(f"{dataset}\n{record}".encode()).hexdigest()


NOT_IDENTITY = ("ingested_at",)
"""Record fields left out of its id: they say when a copy arrived, not what it holds."""


def identity_json(row: Mapping[str, Any]) -> str:
    """The JSON :func:`record_id` hashes: ``row`` without the fields of ``NOT_IDENTITY``."""
    if not any(name in row for name in NOT_IDENTITY):
        return record_json(row)
    return record_json({k: v for k, v in row.items() if k not in NOT_IDENTITY})


def _quarantine_record(
    dataset: str,
    record: Mapping[str, Any],
    *,
    rule: str,
    detail: str | None,
    symbol: str | None,
    ts: datetime | None,
    source: str | None = None,
    quarantined_at: datetime | None = None,
) -> dict[str, Any]:
    """One quarantine row (the columns of ``QUARANTINE_SCHEMA``) for ``record`` of ``dataset``
    rejected by ``rule``, with its canonical JSON and id."""
    text = record_json(record)
    return {
        "dataset": dataset,
        "record_id": record_id(dataset, identity_json(record)),
        "rule": rule,
        "detail": detail,
        "symbol": symbol,
        "ts": ts,
        "record": text,
        "source": source,
        "quarantined_at": quarantined_at,
        "resolved_at": None,
        "resolution": None,
    }


@dataclass(frozen=True)
class Reject:
    """One rejected record: the dataset it belongs to, the rule that rejected it and why."""

    dataset: str
    rule: str
    detail: str
    symbol: str | None
    ts: datetime | None
    record: Mapping[str, Any]
    source: str | None


def reject_table(rejects: Sequence[Reject], now: datetime | None = None) -> pa.Table:
    """``rejects`` as a table in ``QUARANTINE_SCHEMA`` with stable record ids."""
    if not rejects:
        return QUARANTINE_SCHEMA.empty_table()
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    rows = [
        _quarantine_record(
            r.dataset,
            r.record,
            rule=r.rule,
            detail=r.detail,
            symbol=r.symbol,
            ts=r.ts,
            source=r.source,
            quarantined_at=stamp,
        )
        for r in rejects
    ]
    return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)


def check_dataset(dataset: str) -> str:
    """``dataset`` if it can name a quarantine table (lower-case letters, digits and ``_``)."""
    if not isinstance(dataset, str) or not _DATASET.match(dataset):
        raise TerminalError(
            f"invalid quarantine dataset {dataset!r}: lower-case letters, digits and '_'"
        )
    return dataset


def quarantine_rows(
    dataset: str,
    rows: pa.Table,
    rule: str | Sequence[str],
    detail: str | Sequence[str],
    source: str | None = None,
    now: datetime | None = None,
    ts_column: str = "ts",
) -> pa.Table:
    """``QUARANTINE_SCHEMA`` rows for ``rows`` of ``dataset`` rejected by ``rule``.

    ``rule`` and ``detail`` are one value for all rows or one per row. ``symbol``, ``ts`` (from
    ``ts_column``) and, unless ``source`` is given, ``source`` are copied from the rows when
    they have those columns; the whole row is kept as the record.
    """
    check_dataset(dataset)
    count = rows.num_rows
    rules = _per_row(rule, count, "rules")
    details = _per_row(detail, count, "details")
    if (isinstance(rule, str) and not rule) or not all(rules):
        raise TerminalError("quarantine_rows needs the name of the rule that rejected the rows")
    stamp = now or datetime.now(UTC)
    if stamp.tzinfo is None:
        raise TerminalError(f"quarantine time must be timezone-aware (UTC), got {stamp}")
    plain = rows.to_pylist()
    records = [record_json(row) for row in plain]
    ids = [record_id(dataset, identity_json(row)) for row in plain]
    columns: dict[str, Any] = {
        "dataset": pa.array([dataset] * count, pa.string()),
        "record_id": pa.array(ids, pa.string()),
        "rule": pa.array(rules, pa.string()),
        "detail": pa.array(details, pa.string()),
        "symbol": _copied(rows, "symbol", pa.string()),
        "ts": _copied(rows, ts_column, UTC_US),
        "record": pa.array(records, pa.string()),
        "source": (
            pa.array([source] * count, pa.string())
            if source is not None
            else _copied(rows, "source", pa.string())
        ),
        "quarantined_at": pa.array([stamp.astimezone(UTC)] * count, UTC_US),
        "resolved_at": pa.nulls(count, UTC_US),
        "resolution": pa.nulls(count, pa.string()),
    }
    return pa.table(columns, schema=QUARANTINE_SCHEMA)


def _per_row(value: str | Sequence[str], count: int, what: str) -> list[str]:
    values = [value] * count if isinstance(value, str) else list(value)
    if len(values) != count:
        raise TerminalError(f"quarantine_rows got {len(values)} {what} for {count} rows")
    return values


def _copied(rows: pa.Table, name: str, target: pa.DataType) -> pa.Array | pa.ChunkedArray:
    """Column ``name`` cast to ``target``, or nulls when it is absent or of another kind."""
    if name in rows.column_names:
        column = rows.column(name)
        kind = column.type
        text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        text = text or pa.types.is_string_view(kind)
        compatible = (pa.types.is_timestamp(kind) and pa.types.is_timestamp(target)) or (
            pa.types.is_string(target) and text
        )
        if compatible:
            return column.cast(target, safe=False).combine_chunks()
    return pa.nulls(rows.num_rows, target)
