"""Validation of corporate actions (splits and cash dividends)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import polars as pl
import pyarrow as pa

from marketlake.quality.details import Row, shown, with_details
from marketlake.quality.rejects import DETAIL, RULE, build_rejects, stack
from marketlake.schemas import CORPORATE_ACTION_SCHEMA, DIVIDEND, SPLIT, conform

DATASET = "corporate_actions"
BAD_SPLIT_RATIO = "bad_split_ratio"
BAD_DIVIDEND = "bad_dividend"
UNKNOWN_KIND = "unknown_kind"
DUPLICATE = "duplicate"
ACTION_RULES = (UNKNOWN_KIND, BAD_SPLIT_RATIO, BAD_DIVIDEND, DUPLICATE)

_RECORD = tuple(CORPORATE_ACTION_SCHEMA.names)
_KEYS = ("symbol", "ex_date", "kind")


def validate_actions(actions: pa.Table, now: datetime | None = None) -> tuple[pa.Table, pa.Table]:
    """Split ``actions`` into good rows and quarantine rows (dataset ``corporate_actions``).

    Rules: ``unknown_kind`` (kind is neither split nor dividend), ``bad_split_ratio`` (ratio
    missing, not finite, <= 0 or exactly 1), ``bad_dividend`` (amount missing, not finite or
    < 0), ``duplicate`` (a later row with the same symbol, ex_date and kind as an earlier
    good row). Good rows come back in ``CORPORATE_ACTION_SCHEMA`` sorted by symbol, ex_date,
    kind.
    """
    frame = pl.from_arrow(conform(actions, CORPORATE_ACTION_SCHEMA))
    assert isinstance(frame, pl.DataFrame)
    frame = frame.with_row_index("_row")
    kind, ratio, amount = pl.col("kind"), pl.col("ratio"), pl.col("amount")
    bad_ratio = (kind == SPLIT) & ~(ratio.is_finite().fill_null(False) & (ratio > 0) & (ratio != 1))
    bad_amount = (kind == DIVIDEND) & ~(amount.is_finite().fill_null(False) & (amount >= 0))
    checks: list[tuple[str, pl.Expr, Callable[[Row], str]]] = [
        (UNKNOWN_KIND, ~kind.is_in([SPLIT, DIVIDEND]), _unknown_kind),
        (BAD_SPLIT_RATIO, bad_ratio, _bad_ratio),
        (BAD_DIVIDEND, bad_amount, _bad_amount),
    ]
    rejected = [
        with_details(
            frame.filter(mask).select(*_RECORD, "_row", pl.lit(rule).alias(RULE)), describe, DETAIL
        )
        for rule, mask, describe in checks
    ]
    valid = frame.filter(~pl.any_horizontal(*[mask for _, mask, _ in checks]))
    first = pl.struct(*_KEYS).is_first_distinct()
    kept = valid.filter(first)
    extra = valid.filter(~first).join(
        kept.select(
            *_KEYS, pl.col("ratio").alias("ratio_kept"), pl.col("amount").alias("amount_kept")
        ),
        on=list(_KEYS),
    )
    rejected.append(
        with_details(extra, _duplicate, DETAIL).select(
            *_RECORD, "_row", pl.lit(DUPLICATE).alias(RULE), DETAIL
        )
    )
    reject_frame = stack(rejected, rejected[0].schema).sort("_row")
    good = kept.sort(*_KEYS).select(_RECORD).to_arrow().cast(CORPORATE_ACTION_SCHEMA)
    return good, build_rejects(
        reject_frame, dataset=DATASET, columns=_RECORD, ts_column="ex_date", now=now
    )


def _unknown_kind(row: Row) -> str:
    return f"kind {row['kind']!r} is not one of {SPLIT}, {DIVIDEND}"


def _bad_ratio(row: Row) -> str:
    return f"split ratio {shown(row['ratio'])} must be a finite number > 0 and != 1"


def _bad_amount(row: Row) -> str:
    return f"dividend amount {shown(row['amount'])} must be a finite number >= 0"


def _duplicate(row: Row) -> str:
    about = (
        f"duplicate of the first {row['symbol']} {row['kind']} of "
        f"{row['ex_date'].date().isoformat()}: "
    )
    if row["ratio"] == row["ratio_kept"] and row["amount"] == row["amount_kept"]:
        return about + "identical values"
    return about + (
        f"values differ: ratio {shown(row['ratio'])} amount {shown(row['amount'])} "
        f"vs kept ratio {shown(row['ratio_kept'])} amount {shown(row['amount_kept'])}"
    )
