"""Quarantine rows for rejected records: the record as JSON, a stable id, the rule and why."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pyarrow as pa

from marketlake.schemas import QUARANTINE_SCHEMA

RULE = "_rule"
DETAIL = "_detail"


def record_json(row: dict[str, Any]) -> str:
    """``row`` as compact JSON with sorted keys, ISO-8601 timestamps and non-finite floats as
    the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``."""
    return json.dumps(
        {key: _plain(value) for key, value in row.items()},
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
    )


def record_id(dataset: str, record: str) -> str:
    """The stable id of a quarantined record: sha1 of ``dataset + "|" + record``."""
    return hashlib.sha1(f"{dataset}|{record}".encode()).hexdigest()


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


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value
