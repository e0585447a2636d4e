"""Rejected records as text: the canonical JSON of a record and its stable id.

Every quarantine row (batch checks, source adapters, provider files, the stream) keeps the
rejected record as compact JSON with sorted keys and ISO timestamps; ``record_id`` is the SHA-1
of the dataset name, a newline and that JSON. The same record of the same dataset therefore
always gets the same id, so a re-run finds the row it quarantined before.

:class:`Reject` and :func:`reject_table` are the one way source adapters and feed checks turn
the records they refuse into ``QUARANTINE_SCHEMA`` rows; they live here, below both, so that
neither layer imports the other.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from marketlake.schemas import QUARANTINE_SCHEMA


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


def quarantine_record(
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
        "record_id": record_id(dataset, text),
        "rule": rule,
        "detail": detail,
        "symbol": symbol,
        "ts": ts,
        "record": text,
        "source": source,
        "quarantined_at": quarantined_at,
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
        quarantine_record(
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
