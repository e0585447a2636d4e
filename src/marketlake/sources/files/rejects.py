"""Rejects for rows of provider files that could not be parsed.

A reject keeps the raw row as its record with the rule that refused it and a detail naming the
file and line; :func:`marketlake.records.reject_table` turns them into quarantine rows, whose
``record_id`` is the SHA-1 of the dataset name and the record's JSON, so reading the same file
again rejects the same rows under the same ids.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from marketlake.records import Reject
from marketlake.symbols import is_valid_symbol

DATASET = "bars_1d"


def make_reject(
    record: dict[str, Any],
    rule: str,
    detail: str,
    symbol: str | None = None,
    day: date | None = None,
) -> Reject:
    """One reject of ``DATASET``: the raw ``record``, ``rule`` and ``detail`` (no source yet)."""
    ts = datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None
    return Reject(DATASET, rule, detail, symbol, ts, record, None)


def collect_rejects(rejected: Any, header: list[str], file: str) -> list[Reject]:
    """Rejects (the raw row as the record) for the rows of ``rejected`` that did not parse.

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
