"""String cells of a provider file parsed into daily bars, corporate actions and rejects.

Dates come in the layouts providers use (ISO, M/D/YYYY, "Dec 24, 2020", with or without a
midnight time, which may carry a UTC offset: the date as written is the exchange session);
numbers may carry ``$`` and thousands separators. Event rows of the Yahoo history web table
("4:1 Stock Split", "0.205 Dividend") become corporate actions, and the split-adjusted prices
and volumes before such a split are turned back into as-traded values. Rows without a date or
close, with a bad symbol or number, or repeating a symbol and date become rejects with the
reason.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from marketlake.records import Reject
from marketlake.schemas import DIVIDEND, SPLIT
from marketlake.sources.files.rejects import collect_rejects
from marketlake.symbols import SYMBOL_PATTERN

PRICES = ("open", "high", "low", "close", "volume")
_MISSING = ("", "null", "nan", "n/a", "-", "--")
# a midnight time after the date, in any written zone: yfinance writes a London session as
# "2019-01-02 00:00:00+01:00"; the date as written is the exchange's session
_MIDNIGHT = r"[ T]00:00(:00(\.0+)?)?( ?(Z|UTC|GMT|[+-]\d\d(:?\d\d)?))?$"
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%b %d, %Y", "%Y/%m/%d", "%Y%m%d")
_SPLIT_ROW = r"(?i)^\s*([\d.]+)\s*[:/]\s*([\d.]+)\s+stock split\s*$"  # "4:1 Stock Split"
_DIVIDEND_ROW = r"(?i)^\s*\$?([\d.]+)\s+dividend\s*$"  # "0.205 Dividend"


def parse_rows(
    frame: Any, header: list[str], roles: dict[str, int], symbol: str | None, file: str
) -> tuple[Any, Any, list[Reject]]:
    """Parse the string cells into bars and actions; rows that do not parse become rejects.

    ``frame`` holds the cells ``c0, c1, ...`` and ``__line`` (as read by ``cells``),
    ``roles`` maps roles to column indices and ``symbol`` names every row when the file has
    no symbol column. Returns ``(bars, actions, rejects)``, the frames keyed by ``day``.
    """
    import polars as pl

    def cell(role: str) -> pl.Expr:
        return pl.col(f"c{roles[role]}").cast(pl.String).str.strip_chars()

    date_text = cell("date").str.replace(_MIDNIGHT, "")
    day = pl.coalesce([date_text.str.strptime(pl.Date, f, strict=False) for f in _DATE_FORMATS])
    name = cell("symbol").str.to_uppercase() if symbol is None else pl.lit(symbol)
    event = cell("open" if "open" in roles else "close")
    numeric = [r for r in (*PRICES, "dividend", "split") if r in roles]
    work = frame.with_columns(
        day.alias("__day"),
        name.alias("__symbol"),
        event.str.extract(_SPLIT_ROW, 1).cast(pl.Float64, strict=False).alias("__sa"),
        event.str.extract(_SPLIT_ROW, 2).cast(pl.Float64, strict=False).alias("__sb"),
        event.str.extract(_DIVIDEND_ROW, 1).cast(pl.Float64, strict=False).alias("__div"),
        *[_number(cell(r)).alias(f"__{r}") for r in numeric],
    ).with_columns(
        (pl.col("__sa").is_not_null() | pl.col("__div").is_not_null()).alias("__event"),
        pl.col("__symbol").str.contains(SYMBOL_PATTERN.pattern).fill_null(False).alias("__ok"),
    )
    problem = pl.lit(None, pl.String)
    for role in reversed(numeric):
        bad = cell(role).str.to_lowercase().is_in(_MISSING).not_() & pl.col(f"__{role}").is_null()
        text = pl.format("bad number in column {}: '{}'", pl.lit(header[roles[role]]), cell(role))
        problem = pl.when(bad).then(text).otherwise(problem)
    problem = pl.when(pl.col("__close").is_null()).then(pl.lit("missing close")).otherwise(problem)
    rule = (
        pl.when(pl.col("__day").is_null())
        .then(pl.lit("unparseable"))
        .when(~pl.col("__ok"))
        .then(pl.lit("bad_symbol"))
        .when(pl.col("__event"))
        .then(pl.lit(None, pl.String))
        .when(problem.is_not_null())
        .then(pl.lit("unparseable"))
    )
    detail = (
        pl.when(pl.col("__day").is_null())
        .then(pl.format("bad date '{}'", cell("date")))
        .when(~pl.col("__ok"))
        .then(pl.format("bad symbol '{}'", pl.col("__symbol")))
        .otherwise(problem)
    )
    work = work.with_columns(rule.alias("__rule"), detail.alias("__detail"))
    good = work.filter(pl.col("__rule").is_null() & ~pl.col("__event"))
    duplicate = good.select(pl.struct("__symbol", "__day").is_first_distinct().not_()).to_series()
    rejected = pl.concat(
        [
            work.filter(pl.col("__rule").is_not_null()),
            good.filter(duplicate).with_columns(
                pl.lit("duplicate").alias("__rule"),
                pl.lit("another row has the same symbol and date").alias("__detail"),
            ),
        ]
    ).sort("__line")
    good = good.filter(~duplicate)
    events = work.filter(pl.col("__rule").is_null() & pl.col("__event"))
    bars = good.select(
        pl.col("__symbol").alias("symbol"),
        pl.col("__day").alias("day"),
        *[(pl.col(f"__{r}") if r in roles else pl.lit(None, pl.Float64)).alias(r) for r in PRICES],
    )
    actions = _actions(good, events, roles)
    bars, actions = _unadjust(bars, actions, events)
    return (
        bars.sort("symbol", "day"),
        actions.sort("symbol", "day", "kind"),
        collect_rejects(rejected, header, file),
    )


def _number(text: Any) -> Any:
    """Cells as floats: '$', thousands separators and blanks removed; missing markers null."""
    import polars as pl

    cleaned = text.str.replace_all(r"[$,\s]", "")
    missing = text.str.to_lowercase().is_in(_MISSING)
    return pl.when(missing).then(None).otherwise(cleaned.cast(pl.Float64, strict=False))


def _actions(good: Any, events: Any, roles: dict[str, int]) -> Any:
    """Splits and dividends from provider columns and from event rows (flagged as such)."""
    import polars as pl

    def pick(frame: Any, kind: str, ratio: Any, amount: Any, from_event: bool) -> Any:
        return frame.select(
            pl.col("__symbol").alias("symbol"),
            pl.col("__day").alias("day"),
            pl.lit(kind).alias("kind"),
            ratio.cast(pl.Float64).alias("ratio"),
            amount.cast(pl.Float64).alias("amount"),
            pl.lit(from_event).alias("from_event"),
        )

    none = pl.lit(None, pl.Float64)
    split, dividend = pl.col("__split"), pl.col("__dividend")
    parts = [
        pick(
            events.filter(pl.col("__sa").is_not_null()),
            SPLIT,
            pl.col("__sa") / pl.col("__sb"),
            none,
            True,
        ),
        pick(events.filter(pl.col("__div").is_not_null()), DIVIDEND, none, pl.col("__div"), True),
    ]
    if "split" in roles:
        real = good.filter(split.is_not_null() & ~split.is_in([0.0, 1.0]))
        parts.append(pick(real, SPLIT, split, none, False))
    if "dividend" in roles:
        parts.append(pick(good.filter(dividend > 0), DIVIDEND, none, dividend, False))
    ratio = pl.col("ratio").map_elements(snap_ratio, return_dtype=pl.Float64, skip_nulls=True)
    return pl.concat(parts).with_columns(ratio.alias("ratio"))


def snap_ratio(ratio: float) -> float:
    """A split ratio as the simple fraction it stands for (7.00000700001 -> 7.0, 1.5 -> 1.5)."""
    simple = Fraction(ratio).limit_denominator(100)
    return float(simple) if abs(float(simple) - ratio) <= 1e-5 * abs(ratio) else ratio


def _unadjust(bars: Any, actions: Any, events: Any) -> tuple[Any, Any]:
    """Undo split adjustment where splits came as event rows (the Yahoo history table).

    Prices before each such split are multiplied by its ratio, volumes divided by it, and so
    are dividends paid before it, giving the values as traded.
    """
    import polars as pl

    splits = actions.filter(pl.col("from_event") & (pl.col("kind") == SPLIT))
    factor = pl.lit(1.0)
    for symbol, day, ratio in splits.select("symbol", "day", "ratio").iter_rows():
        before = (pl.col("symbol") == symbol) & (pl.col("day") < day)
        factor = pl.when(before).then(factor * ratio).otherwise(factor)
    bars = bars.with_columns(factor.alias("__f")).with_columns(
        *[(pl.col(c) * pl.col("__f")).round(6).alias(c) for c in ("open", "high", "low", "close")],
        (pl.col("volume") / pl.col("__f")).alias("volume"),
    )
    amount = (pl.col("amount") * factor).round(6).alias("amount")
    actions = actions.with_columns(amount).drop("from_event")
    return bars.drop("__f"), actions
