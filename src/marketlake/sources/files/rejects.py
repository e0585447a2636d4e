"""Reject records for rows of provider files that could not be parsed.

A reject keeps the raw row as compact JSON (:func:`marketlake.records.record_json`) with the
rule that refused it and a detail naming the file and line. ``record_id`` is the SHA-1 of the
dataset name and that JSON, so reading the same file again rejects the same rows under the
same ids.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from marketlake.records import quarantine_record
from marketlake.schemas import QUARANTINE_SCHEMA
from marketlake.symbols import is_valid_symbol

DATASET = "bars_1d"


def make_reject(
    record: dict[str, Any],
    rule: str,
    detail: str,
    symbol: str | None = None,
    day: date | None = None,
) -> dict[str, Any]:
    """One reject of ``DATASET``: ``record`` as JSON, its id, ``rule`` and ``detail``."""
    return quarantine_record(
        DATASET,
        record,
        rule=rule,
        detail=detail,
        symbol=symbol,
        ts=datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None,
    )


def collect_rejects(rejected: Any, header: list[str], file: str) -> list[dict[str, Any]]:
    """Reject records (the raw row as JSON) for the rows of ``rejected`` that did not parse.

    ``rejected`` is a polars frame of string cells ``c0, c1, ...`` (named by ``header``) with
    the working columns ``__symbol``, ``__day``, ``__line``, ``__rule`` and ``__detail``.
    """
    out = []
    for row in rejected.iter_rows(named=True):
        record = {h: row[f"c{i}"] for i, h in enumerate(header)}
        symbol = row["__symbol"] if is_valid_symbol(row["__symbol"] or "") else None
        detail = f"{file} line {row['__line']}: {row['__detail']}"
        out.append(make_reject(record, row["__rule"], detail, symbol, row["__day"]))
    return out


def reject_table(rejects: list[dict[str, Any]], source: str, stamp: datetime) -> pa.Table:
    """``rejects`` as a ``QUARANTINE_SCHEMA`` table from ``source``, quarantined at ``stamp``."""
    rows = [{**r, "source": source, "quarantined_at": stamp} for r in rejects]
    return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)
