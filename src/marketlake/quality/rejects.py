"""Quarantine rows for rejected records: the record as JSON, a stable id, the rule and why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa

from marketlake.records import record_id, record_json
from marketlake.schemas import QUARANTINE_SCHEMA

RULE = "_rule"
DETAIL = "_detail"


def build_rejects(
    rejected: pl.DataFrame,
    *,
    dataset: str,
    columns: Sequence[str],
    ts_column: str,
    now: datetime | None,
) -> pa.Table:
    """Quarantine rows (``QUARANTINE_SCHEMA``) for ``rejected``.

    ``rejected`` holds the record ``columns`` plus ``_rule`` and ``_detail``; one quarantine
    row is made per input row. ``ts_column`` names the record's time column.
    """
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    if rejected.height == 0:
        return QUARANTINE_SCHEMA.empty_table()
    records = [record_json(row) for row in rejected.select(columns).iter_rows(named=True)]
    return pa.table(
        {
            "dataset": pa.array([dataset] * len(records), pa.string()),
            "record_id": pa.array([record_id(dataset, r) for r in records], pa.string()),
            "rule": rejected[RULE].to_arrow(),
            "detail": rejected[DETAIL].to_arrow(),
            "symbol": rejected["symbol"].to_arrow(),
            "ts": rejected[ts_column].to_arrow(),
            "record": pa.array(records, pa.string()),
            "source": rejected["source"].to_arrow(),
            "quarantined_at": pa.array([stamp] * len(records), QUARANTINE_SCHEMA.field("ts").type),
        }
    ).cast(QUARANTINE_SCHEMA)


def stack(frames: Sequence[pl.DataFrame], schema: pl.Schema) -> pl.DataFrame:
    """Concatenate rule outputs that share ``schema`` (an empty frame when there are none)."""
    parts = [frame for frame in frames if frame.height]
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat(parts, how="vertical")
