"""Back-adjustment of as-traded daily bars for splits and cash dividends.

The convention of Yahoo Finance and CRSP: the latest prices are left as traded and earlier
prices are scaled, so a chart of adjusted closes has no gap on an ex-date.

- A split of ratio ``r`` (new shares per old) on ex-date ``d`` divides the prices of every bar
  with ``ts < d`` by ``r`` and multiplies their volumes by ``r``.
- A cash dividend of ``a`` per share on ex-date ``d`` multiplies the prices of every bar with
  ``ts < d`` by ``1 - a / c``, where ``c`` is the as-traded close of the last bar before ``d``.
  Volumes are unchanged. A dividend with no earlier bar, or with ``a >= c``, cannot be turned
  into a factor: it is skipped and listed in :attr:`AdjustmentPlan.skipped`.

Factors of several events compound multiplicatively. A dividend amount is read in the units of
the as-traded close before its ex-date.

:func:`factor_spans` condenses adjusted bars into the runs of sessions sharing one pair of
factors, the lake's ``analytics/adjustment_factors``. Adjusted bars are derived from them at
read time: the warehouse's ``bars_1d_adjusted`` is a view that multiplies ``bars_1d`` by them,
and :func:`apply_spans` does the same to bars read from the lake. Both give the engine's
adjusted values to the bit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from marketlake.schemas import ADJUSTED_BAR_SCHEMA, ADJUSTMENT_FACTOR_SCHEMA, DIVIDEND, SPLIT
from marketlake.series import run_starts, sort_by_key

log = logging.getLogger(__name__)

PRICE_COLUMNS = ("open", "high", "low", "close")


_EVENT_SCHEMA = pl.Schema(
    {
        "symbol": pl.String(),
        "ex_date": pl.Datetime("us", "UTC"),
        "price_mult": pl.Float64(),
        "volume_mult": pl.Float64(),
    }
)
_SKIPPED_SCHEMA = pl.Schema(
    {
        "symbol": pl.String(),
        "ex_date": pl.Datetime("us", "UTC"),
        "amount": pl.Float64(),
        "prior_close": pl.Float64(),
        "reason": pl.String(),
    }
)


@dataclass(frozen=True)
class AdjustmentPlan:
    """The per-ex-date multipliers of a set of actions, and the dividends that were skipped.

    ``events`` has one row per (symbol, ex_date): ``price_mult`` and ``volume_mult`` apply to
    every bar before ``ex_date``. ``skipped`` lists dividends that could not be applied, with
    the reason.
    """

    events: pl.DataFrame
    skipped: pl.DataFrame


def plan_adjustments(
    bars: pl.DataFrame, actions: pl.DataFrame, *, dividends: bool = True
) -> AdjustmentPlan:
    """Turn corporate actions into per-ex-date price and volume multipliers.

    Splits need a finite ratio > 0 and dividends a finite amount > 0; other rows (which
    :func:`marketlake.quality.bars.validate_actions` quarantines) are ignored. Repeated
    (symbol, ex_date, kind) rows count once.
    """
    acts = actions.select("symbol", _as_utc_us("ex_date"), "kind", "ratio", "amount").unique(
        subset=["symbol", "ex_date", "kind"], keep="first", maintain_order=True
    )
    splits = acts.filter(
        (pl.col("kind") == SPLIT) & pl.col("ratio").is_finite() & (pl.col("ratio") > 0)
    ).select(
        "symbol",
        "ex_date",
        (1.0 / pl.col("ratio")).alias("price_mult"),
        pl.col("ratio").alias("volume_mult"),
    )
    parts = [splits]
    skipped = pl.DataFrame(schema=_SKIPPED_SCHEMA)
    if dividends:
        cash, skipped = _dividend_events(bars, acts)
        parts.append(cash)
    events = (
        pl.concat([p.cast(_EVENT_SCHEMA) for p in parts])
        .group_by("symbol", "ex_date")
        .agg(pl.col("price_mult").product(), pl.col("volume_mult").product())
        .sort("symbol", "ex_date")
    )
    return AdjustmentPlan(events=events, skipped=skipped)


def _dividend_events(bars: pl.DataFrame, acts: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    divs = acts.filter(
        (pl.col("kind") == DIVIDEND) & pl.col("amount").is_finite() & (pl.col("amount") > 0)
    ).select("symbol", "ex_date", "amount")
    closes = sort_by_key(
        bars.select("symbol", _as_utc_us("ts"), pl.col("close").alias("prior_close"))
    )
    priced = divs.sort("symbol", "ex_date").join_asof(
        closes,
        left_on="ex_date",
        right_on="ts",
        by="symbol",
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    usable = pl.col("prior_close").is_not_null() & (pl.col("amount") < pl.col("prior_close"))
    events = priced.filter(usable).select(
        "symbol",
        "ex_date",
        (1.0 - pl.col("amount") / pl.col("prior_close")).alias("price_mult"),
        pl.lit(1.0).alias("volume_mult"),
    )
    skipped = (
        priced.filter(~usable)
        .select(
            "symbol",
            "ex_date",
            "amount",
            "prior_close",
            pl.when(pl.col("prior_close").is_null())
            .then(pl.lit("no bar before the ex-date"))
            .otherwise(pl.lit("amount is not below the prior close"))
            .alias("reason"),
        )
        .cast(_SKIPPED_SCHEMA)
    )
    if skipped.height:
        log.warning(
            "skipped %d dividend(s) that cannot be turned into an adjustment factor: %s",
            skipped.height,
            ", ".join(
                f"{r['symbol']} {r['ex_date']:%Y-%m-%d}" for r in skipped.head(5).rows(named=True)
            ),
        )
    return events, skipped


def adjust_bars(
    bars: pl.DataFrame, actions: pl.DataFrame, *, dividends: bool = True
) -> pl.DataFrame:
    """Back-adjust as-traded bars of any number of symbols for their corporate actions.

    ``bars`` has the columns of ``BAR_SCHEMA`` and ``actions`` those of
    ``CORPORATE_ACTION_SCHEMA``. Returns symbol, ts, open, high, low, close, volume (adjusted),
    price_factor and volume_factor, sorted by symbol and ts. With ``dividends=False`` only
    splits are applied (split-adjusted prices, as Yahoo's "Close" column).
    """
    plan = plan_adjustments(bars, actions, dividends=dividends)
    return apply_plan(bars, plan)


def apply_plan(bars: pl.DataFrame, plan: AdjustmentPlan) -> pl.DataFrame:
    """Apply the multipliers of ``plan`` to ``bars`` (see :func:`adjust_bars`)."""
    # For each event, the product of its own and every later multiplier of the symbol: a bar
    # takes the cumulative factor of the first event strictly after it.
    cumulative = (
        plan.events.sort("symbol", "ex_date", descending=[False, True])
        .with_columns(
            pl.col("price_mult").cum_prod().over("symbol").alias("price_factor"),
            pl.col("volume_mult").cum_prod().over("symbol").alias("volume_factor"),
        )
        .select("symbol", "ex_date", "price_factor", "volume_factor")
        .sort("symbol", "ex_date")
    )
    base = sort_by_key(bars.select("symbol", _as_utc_us("ts"), *PRICE_COLUMNS, "volume"))
    joined = base.join_asof(
        cumulative,
        left_on="ts",
        right_on="ex_date",
        by="symbol",
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    price = pl.col("price_factor").fill_null(1.0)
    volume = pl.col("volume_factor").fill_null(1.0)
    return joined.select(
        "symbol",
        "ts",
        *[(pl.col(c) * price).alias(c) for c in PRICE_COLUMNS],
        (pl.col("volume") * volume).alias("volume"),
        price.alias("price_factor"),
        volume.alias("volume_factor"),
    )


def adjust_table(bars: pa.Table, actions: pa.Table, *, dividends: bool = True) -> pa.Table:
    """Arrow wrapper of :func:`adjust_bars`: returns a table in ``ADJUSTED_BAR_SCHEMA``."""
    frame = pl.from_arrow(bars)
    acts = pl.from_arrow(actions)
    assert isinstance(frame, pl.DataFrame) and isinstance(acts, pl.DataFrame)
    return adjust_bars(frame, acts, dividends=dividends).to_arrow().cast(ADJUSTED_BAR_SCHEMA)


def factor_spans(adjusted: pa.Table) -> pa.Table:
    """The spans of ``adjusted`` bars (``ADJUSTED_BAR_SCHEMA``) sharing their factors, in
    ``ADJUSTMENT_FACTOR_SCHEMA``: per symbol, one row per run of consecutive bars with the same
    price and volume factors. A span starts at its first bar and ends where the symbol's next
    span starts; the symbol's last span has no end, so bars appended after it take its factors,
    as :func:`apply_plan` gives them when no action is dated after them.
    """
    frame = pl.from_arrow(adjusted.select(["symbol", "ts", "price_factor", "volume_factor"]))
    assert isinstance(frame, pl.DataFrame)
    frame = sort_by_key(frame.with_columns(_as_utc_us("ts")))
    changed = run_starts() | pl.any_horizontal(
        pl.col(c).ne_missing(pl.col(c).shift(1)).fill_null(True)
        for c in ("price_factor", "volume_factor")
    )
    spans = frame.filter(changed).select(
        "symbol",
        pl.col("ts").alias("valid_from"),
        pl.col("ts").shift(-1).over("symbol").alias("valid_to"),
        "price_factor",
        "volume_factor",
    )
    return spans.to_arrow().cast(ADJUSTMENT_FACTOR_SCHEMA)


def apply_spans(bars: pa.Table, spans: pa.Table) -> pa.Table:
    """``bars`` (``BAR_SCHEMA``) back-adjusted by their symbols' ``spans``
    (``ADJUSTMENT_FACTOR_SCHEMA``, as :func:`factor_spans` makes them), in
    ``ADJUSTED_BAR_SCHEMA``, sorted by symbol and ts.

    The warehouse's ``bars_1d_adjusted`` view in Python: each bar takes the factors of the span
    it falls in, and a bar before its symbol's first span (or of a symbol without spans) is
    left out. Prices and factors are multiplied as the engine multiplies them, so the values
    equal the engine's to the bit.
    """
    frame = pl.from_arrow(bars.select(["symbol", "ts", *PRICE_COLUMNS, "volume"]))
    factors = pl.from_arrow(spans.select(["symbol", "valid_from", "price_factor", "volume_factor"]))
    assert isinstance(frame, pl.DataFrame) and isinstance(factors, pl.DataFrame)
    joined = sort_by_key(frame.with_columns(_as_utc_us("ts"))).join_asof(
        factors.with_columns(_as_utc_us("valid_from")).sort("symbol", "valid_from"),
        left_on="ts",
        right_on="valid_from",
        by="symbol",
        strategy="backward",
        check_sortedness=False,
    )
    price, volume = pl.col("price_factor"), pl.col("volume_factor")
    adjusted = joined.filter(price.is_not_null()).select(
        "symbol",
        "ts",
        *[(pl.col(c) * price).alias(c) for c in PRICE_COLUMNS],
        (pl.col("volume") * volume).alias("volume"),
        price,
        volume,
    )
    return adjusted.to_arrow().cast(ADJUSTED_BAR_SCHEMA)


def _as_utc_us(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Datetime("us", "UTC"))
