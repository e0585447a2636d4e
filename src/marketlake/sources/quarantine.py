"""Quarantine rows made by source adapters and feed checks (``QUARANTINE_SCHEMA``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from marketlake.records import quarantine_record
from marketlake.schemas import QUARANTINE_SCHEMA


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
