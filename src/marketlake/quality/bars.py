"""Validation of daily bars: every bad row goes to quarantine with the rule that rejected it.

Row rules (``null_value``, ``non_positive_price``, ``negative_volume``, ``implausible_volume``
(more shares than ``max_volume`` in one session), ``ohlc_invariant``, ``not_a_session``) look at
one row; a row may break several and gets one quarantine row per
rule, except that a row with a missing or non-finite value is reported as ``null_value`` and
skips the price and volume rules.
``duplicate`` then keeps the first of the remaining rows for each (symbol, ts) in batch order,
and ``implausible_jump`` checks closes against the previous good bar (see
:mod:`marketlake.quality.jumps`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial

import numpy as np
import polars as pl
import pyarrow as pa

from marketlake.quality import details
from marketlake.quality.actions import validate_actions
from marketlake.quality.completeness import MISSING_SCHEMA, missing_sessions, session_index
from marketlake.quality.jumps import flag_jumps
from marketlake.quality.rejects import DETAIL, RULE, build_rejects, stack
from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA, QUARANTINE_SCHEMA, conform
from marketlake.series import run_starts, sort_by_key

__all__ = ["BAR_RULES", "BarValidation", "validate_actions", "validate_bars"]

DATASET = "bars_1d"
NULL_VALUE = "null_value"
NON_POSITIVE_PRICE = "non_positive_price"
NEGATIVE_VOLUME = "negative_volume"
IMPLAUSIBLE_VOLUME = "implausible_volume"
MAX_VOLUME = 1e12
"""Default largest volume of one daily bar: about a hundred times the busiest sessions ever
traded on a US exchange."""
OHLC_INVARIANT = "ohlc_invariant"
NOT_A_SESSION = "not_a_session"
DUPLICATE = "duplicate"
IMPLAUSIBLE_JUMP = "implausible_jump"
BAR_RULES = (
    NULL_VALUE,
    NON_POSITIVE_PRICE,
    NEGATIVE_VOLUME,
    IMPLAUSIBLE_VOLUME,
    OHLC_INVARIANT,
    NOT_A_SESSION,
    DUPLICATE,
    IMPLAUSIBLE_JUMP,
)

PRICES = details.PRICES
VALUES = details.VALUES
_RECORD = tuple(BAR_SCHEMA.names)
_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class BarValidation:
    """The outcome of :func:`validate_bars`.

    ``bars``: good rows (``BAR_SCHEMA``, sorted by symbol, ts). ``rejects``: quarantine rows
    (``QUARANTINE_SCHEMA``). ``missing``: expected sessions with no good bar (symbol, ts).
    ``counts``: quarantine rows per rule, every rule of ``BAR_RULES`` present.
    """

    bars: pa.Table
    rejects: pa.Table = field(default_factory=QUARANTINE_SCHEMA.empty_table)
    missing: pa.Table = field(default_factory=MISSING_SCHEMA.empty_table)
    counts: dict[str, int] = field(default_factory=dict)


def validate_bars(
    bars: pa.Table,
    actions: pa.Table,
    *,
    sessions: np.ndarray | None,
    max_daily_jump: float = 0.6,
    max_volume: float = MAX_VOLUME,
    previous: pa.Table | None = None,
    now: datetime | None = None,
    requested: tuple[date, date] | None = None,
    find_missing: bool = True,
) -> BarValidation:
    """Split daily ``bars`` (as traded, ``BAR_SCHEMA``) into good rows and quarantine rows.

    ``actions`` (``CORPORATE_ACTION_SCHEMA``) explain jumps on split ex-dates. ``sessions``
    (``datetime64[D]``, sorted, e.g. a calendar's ``days``) enables the ``not_a_session`` check
    and the missing-session report; without it only midnight alignment is checked and
    ``missing`` is empty. ``previous`` holds stored good bars of the batch's symbols (the last one
    before the batch at least): each row is checked for a jump against the bar just before it
    among those and the batch, so the first row is checked too, and so is a re-fetched session
    between stored ones. Missing sessions are counted
    between each symbol's first and last session-aligned row, or over ``requested``; with
    ``find_missing`` False (a caller with its own completeness check) ``missing`` is left
    empty and ``sessions`` only serves the ``not_a_session`` check.
    """
    table = conform(bars, BAR_SCHEMA)
    frame = sort_by_key(_frame(table).with_row_index("_row"))
    acts = _frame(conform(actions, CORPORATE_ACTION_SCHEMA))
    masks = _row_masks(frame, sessions, max_volume)
    describers: dict[str, Callable[[details.Row], str]] = {
        NULL_VALUE: details.null_value,
        NON_POSITIVE_PRICE: details.non_positive_price,
        NEGATIVE_VOLUME: details.negative_volume,
        IMPLAUSIBLE_VOLUME: partial(details.implausible_volume, limit=max_volume),
        OHLC_INVARIANT: details.ohlc_invariant,
        NOT_A_SESSION: details.not_a_session,
    }
    row_bad = masks.select(pl.any_horizontal(*describers)).to_series()
    rejected: list[pl.DataFrame] = []
    candidates = frame
    if row_bad.any():
        bad_rows = pl.concat([frame, masks], how="horizontal").filter(row_bad)
        rejected = [
            details.with_details(
                bad_rows.filter(rule).select(*_RECORD, "_row", pl.lit(rule).alias(RULE)),
                describe,
                DETAIL,
            )
            for rule, describe in describers.items()
        ]
        candidates = frame.filter(~row_bad)
    kept, duplicates = _split_duplicates(candidates)
    rejected.append(duplicates)
    previous_frame = _frame(conform(previous, BAR_SCHEMA)) if previous is not None else None
    jumps = flag_jumps(kept, previous_frame, acts, max_daily_jump)
    jumped = pl.col("_row").is_in(jumps["_row"].implode())
    rejected.append(
        details.with_details(
            kept.filter(jumped).join(jumps, on="_row"),
            partial(details.implausible_jump, limit=max_daily_jump),
            DETAIL,
        ).select(*_RECORD, "_row", pl.lit(IMPLAUSIBLE_JUMP).alias(RULE), DETAIL)
    )
    good = kept.select("symbol", "ts", "_row").filter(~jumped)
    reject_frame = stack(rejected, _with_reason(frame.schema))
    order = {rule: i for i, rule in enumerate(BAR_RULES)}
    reject_frame = reject_frame.sort(
        "_row", pl.col(RULE).replace_strict(order, return_dtype=pl.Int32)
    )
    counts = dict.fromkeys(BAR_RULES, 0)
    for rule, n in reject_frame.group_by(RULE).len().iter_rows():
        counts[rule] = n
    missing = MISSING_SCHEMA.empty_table()
    if sessions is not None and find_missing:
        keys = frame.select("symbol", "ts")
        spans = _spans(keys if requested is not None else keys.filter(masks["_on_calendar"]))
        missing = missing_sessions(spans, good, sessions, requested)
    return BarValidation(
        bars=_take(table, good["_row"].to_numpy()),
        rejects=build_rejects(
            reject_frame, dataset=DATASET, columns=_RECORD, ts_column="ts", now=now
        ),
        missing=missing,
        counts=counts,
    )


def _spans(rows: pl.DataFrame) -> pl.DataFrame:
    """First and last date of each symbol in ``rows`` (symbol, ts; sorted)."""
    aligned = rows.select("symbol", pl.col("ts").cast(pl.Date))
    last = (pl.col("symbol") != pl.col("symbol").shift(-1)).fill_null(True)
    return (
        aligned.filter(run_starts())
        .select("symbol", pl.col("ts").alias("first"))
        .with_columns(aligned.filter(last)["ts"].alias("last"))
    )


def _take(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """Rows of ``table`` by position, without copying when that is all of them in order."""
    if len(rows) == table.num_rows and bool(np.all(rows == np.arange(len(rows)))):
        return table
    return table.take(pa.array(rows))


def _with_reason(schema: pl.Schema) -> pl.Schema:
    return pl.Schema([*schema.items(), (RULE, pl.String()), (DETAIL, pl.String())])


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _row_masks(frame: pl.DataFrame, sessions: np.ndarray | None, max_volume: float) -> pl.DataFrame:
    """One boolean column per row rule, plus ``_on_calendar``, evaluated with NumPy."""
    o, h, low, c, v = (frame[name].to_numpy() for name in VALUES)  # nulls become NaN
    finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(low) & np.isfinite(c) & np.isfinite(v)
    with np.errstate(invalid="ignore"):
        non_positive = finite & ((o <= 0) | (h <= 0) | (low <= 0) | (c <= 0))
        ohlc = finite & ((low > o) | (low > c) | (h < o) | (h < c) | (low > h))
        negative_volume = finite & (v < 0)
        huge_volume = finite & (v > max_volume)
    micros = frame["ts"].cast(pl.Datetime("us", "UTC")).cast(pl.Int64).to_numpy()
    on_calendar = micros % _DAY_US == 0
    if sessions is not None:
        days = np.asarray(sessions, dtype="datetime64[D]").astype(np.int64)
        on_calendar &= session_index(days, micros // _DAY_US) >= 0
    return pl.DataFrame(
        {
            NULL_VALUE: ~finite,
            NON_POSITIVE_PRICE: non_positive,
            NEGATIVE_VOLUME: negative_volume,
            IMPLAUSIBLE_VOLUME: huge_volume,
            OHLC_INVARIANT: ohlc,
            NOT_A_SESSION: ~on_calendar,
            "_on_calendar": on_calendar,
        }
    )


def _split_duplicates(candidates: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep the first row of each (symbol, ts) in batch order; the others are duplicates.

    ``candidates`` is sorted by symbol and ts with ties in batch order.
    """
    repeat = (pl.col("symbol") == pl.col("symbol").shift(1)) & (
        pl.col("ts") == pl.col("ts").shift(1)
    )
    repeated = candidates.select(repeat.fill_null(False)).to_series()
    if not repeated.any():
        return candidates, pl.DataFrame(schema=_with_reason(candidates.schema))
    kept = candidates.filter(~repeated)
    extra = candidates.filter(repeated)
    compared = ("source", *VALUES)
    joined = extra.join(
        kept.join(extra.select("symbol", "ts").unique(), on=["symbol", "ts"]).select(
            "symbol", "ts", *[pl.col(c).alias(f"{c}_kept") for c in compared]
        ),
        on=["symbol", "ts"],
    )
    joined = details.with_details(joined, partial(details.duplicate, compared=compared), DETAIL)
    duplicates = joined.select(*_RECORD, "_row", pl.lit(DUPLICATE).alias(RULE), DETAIL).sort("_row")
    return kept, duplicates
