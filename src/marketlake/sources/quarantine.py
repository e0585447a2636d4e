"""Quarantine rows made by source adapters and feed checks (``QUARANTINE_SCHEMA``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

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
    from marketlake.quality.rejects import record_id, record_json

    if not rejects:
        return QUARANTINE_SCHEMA.empty_table()
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    records = [record_json(dict(r.record)) for r in rejects]
    return pa.table(
        {
            "dataset": [r.dataset for r in rejects],
            "record_id": [
                record_id(r.dataset, rec) for r, rec in zip(rejects, records, strict=True)
            ],
            "rule": [r.rule for r in rejects],
            "detail": [r.detail for r in rejects],
            "symbol": [r.symbol for r in rejects],
            "ts": pa.array([r.ts for r in rejects], QUARANTINE_SCHEMA.field("ts").type),
            "record": records,
            "source": [r.source for r in rejects],
            "quarantined_at": pa.array([stamp] * len(rejects), QUARANTINE_SCHEMA.field("ts").type),
        },
        schema=QUARANTINE_SCHEMA,
    )
