"""Daily bars from CSV and Parquet files, in the layouts data providers export.

Supported: Yahoo downloads (``Date,Open,High,Low,Close,Adj Close,Volume``), long files with a
symbol column, Alpha Vantage (``timestamp,open,...`` with ``dividend_amount`` and
``split_coefficient`` when adjusted), Nasdaq (``date,close,volume,open,high,low``, M/D/YYYY,
``$`` prices) and the Yahoo history web table (``Close*``, "Dec 24, 2020", event rows such as
"4:1 Stock Split"). Column names are matched case-insensitively, ignoring numbering ("1. open")
and footnote marks ("Close*"). ``Adj Close`` is ignored: bars are stored as traded.

The web table's prices and volumes are split-adjusted (its footnote says so); they are turned
back into as-traded values with the split rows of the same table, which also become
corporate actions. Rows that cannot be parsed go to ``rejects`` with the reason; they are
never dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from marketlake.errors import SourceError
from marketlake.schemas import (
    BAR_SCHEMA,
    CORPORATE_ACTION_SCHEMA,
    DIVIDEND,
    QUARANTINE_SCHEMA,
    SPLIT,
)
from marketlake.sources.base import HistoryBatch, HistorySource
from marketlake.symbols import SYMBOL_PATTERN, is_valid_symbol, validate_symbols

FORMATS = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
ROLES = {
    "date": ("date", "timestamp", "datetime", "time", "day", "ts"),
    "symbol": ("symbol", "ticker"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close", "close/last", "last"),
    "volume": ("volume", "vol"),
    "dividend": ("dividend_amount", "dividend", "dividends"),
    "split": ("split_coefficient", "split", "stock_splits", "split_ratio"),
}
PRICES = ("open", "high", "low", "close", "volume")
EXPECTED = "Date, Open, High, Low, Close, Volume (optionally Symbol)"
DATASET = "bars_1d"
_MISSING = ("", "null", "nan", "n/a", "-", "--")
_MIDNIGHT = r"[ T]00:00(:00(\.0+)?)?( ?(Z|UTC|[+-]00:?00))?$"
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%b %d, %Y", "%Y/%m/%d", "%Y%m%d")
_SPLIT_ROW = r"(?i)^\s*([\d.]+)\s*[:/]\s*([\d.]+)\s+stock split\s*$"  # "4:1 Stock Split"
_DIVIDEND_ROW = r"(?i)^\s*\$?([\d.]+)\s+dividend\s*$"  # "0.205 Dividend"


@dataclass
class _Parsed:
    """One file, parsed: bars and actions without ``ingested_at``, rejects, and the bytes."""

    fmt: str
    raw: bytes
    bars: Any  # polars.DataFrame: symbol, day, open, high, low, close, volume
    actions: Any  # polars.DataFrame: symbol, day, kind, ratio, amount
    rejects: list[dict[str, Any]]

    @property
    def symbols(self) -> list[str]:
        return sorted(set(self.bars["symbol"].to_list()) | set(self.actions["symbol"].to_list()))


class FileSource(HistorySource):
    """Bars read from one CSV/Parquet file or every such file in a folder (sorted by name).

    ``fmt`` (``"csv"`` or ``"parquet"``) overrides detection from the file extension. A file
    without a symbol column takes its symbol from its name (``AAPL.csv``,
    ``yahoofinance-SPY-20200901.csv``), else from ``symbols_hint`` when that names one symbol.
    """

    name: ClassVar[str] = "files"

    def __init__(
        self, path: Path, fmt: str | None = None, symbols_hint: Sequence[str] | None = None
    ) -> None:
        if fmt is not None and fmt not in ("csv", "parquet"):
            raise SourceError(f"unknown file format {fmt!r}: use 'csv' or 'parquet'")
        self.path = Path(path)
        self.fmt = fmt
        self.symbols_hint = validate_symbols(symbols_hint or [])
        self._cache: dict[Path, _Parsed] = {}

    def files(self) -> list[Path]:
        """The files this source reads."""
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise SourceError(f"no file or folder at {self.path}")
        wanted = {self.fmt} if self.fmt else {"csv", "parquet"}
        found = [p for p in sorted(self.path.iterdir()) if p.is_file() and _format_of(p) in wanted]
        if not found:
            raise SourceError(f"no {' or '.join(sorted(wanted))} files in {self.path}")
        return found

    def available_symbols(self) -> list[str]:
        """Every symbol found in the files."""
        return sorted({s for path in self.files() for s in self._parse(path).symbols})

    def fetch_symbol(self, symbol: str, start: date, end: date) -> HistoryBatch:
        """The bars of ``symbol`` from the first file that holds it."""
        for batch in self.fetch_history([symbol], start, end):
            if batch.bars.num_rows or batch.actions.num_rows:
                return batch
        raise SourceError(
            f"symbol {symbol} not found in {self.path}; available: {self.available_symbols()}"
        )

    def fetch_history(
        self, symbols: Sequence[str], start: date, end: date
    ) -> Iterator[HistoryBatch]:
        """One batch per file, filtered to ``symbols`` and to dates in [start, end]."""
        import polars as pl

        wanted = validate_symbols(symbols)
        stamp = datetime.now(UTC)
        for path in self.files():
            parsed = self._parse(path)
            keep = pl.col("symbol").is_in(wanted) & pl.col("day").is_between(start, end)
            bars = parsed.bars.filter(keep)
            actions = parsed.actions.filter(keep)
            rejects = [r for r in parsed.rejects if r["symbol"] in (None, *wanted)]
            if bars.is_empty() and actions.is_empty() and not rejects:
                continue
            yield HistoryBatch(
                source=parsed.fmt,
                batch_id=f"{path.stem}-{hashlib.sha1(parsed.raw).hexdigest()[:12]}",
                bars=_arrow(bars, BAR_SCHEMA, "ts", parsed.fmt, stamp),
                actions=_arrow(actions, CORPORATE_ACTION_SCHEMA, "ex_date", parsed.fmt, stamp),
                raw=parsed.raw,
                raw_format=parsed.fmt,
                rejects=_reject_table(rejects, parsed.fmt, stamp),
            )

    def _parse(self, path: Path) -> _Parsed:
        if path not in self._cache:
            self._cache[path] = self._read(path)
        return self._cache[path]

    def _read(self, path: Path) -> _Parsed:
        fmt = self.fmt or _format_of(path)
        if fmt is None:
            raise SourceError(f"{path.name}: unknown file type; use .csv or .parquet (or --format)")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc}") from exc
        if not raw.strip():
            raise SourceError(f"{path.name} is empty; expected columns {EXPECTED}")
        frame, header, rejects = (
            _read_parquet(path, raw) if fmt == "parquet" else _read_csv(path, raw)
        )
        roles = _roles(header)
        if "date" not in roles or "close" not in roles:
            raise SourceError(
                f"{path.name}: no date and close columns in {header[:12]}; expected {EXPECTED}"
            )
        symbol = None if "symbol" in roles else self._symbol_of(path)
        bars, actions, more = _normalise(frame, header, roles, symbol, path.name)
        return _Parsed(fmt, raw, bars, actions, rejects + more)

    def _symbol_of(self, path: Path) -> str:
        found = symbol_from_name(path.stem)
        if found:
            return found
        if len(self.symbols_hint) == 1:
            return self.symbols_hint[0]
        raise SourceError(
            f"{path.name}: no symbol column and no symbol in the file name; "
            "add a 'symbol' column or name the file after the symbol (e.g. AAPL.csv)"
        )


def symbol_from_name(stem: str) -> str | None:
    """The symbol a file name gives: the stem itself, else its longest upper-case token."""
    if is_valid_symbol(stem):
        return stem
    tokens = [
        t
        for t in re.split(r"[_\-\s]+", stem)
        if t == t.upper() and any(c.isalpha() for c in t) and is_valid_symbol(t)
    ]
    return max(tokens, key=len) if tokens else None


def _format_of(path: Path) -> str | None:
    return FORMATS.get(path.suffix.lower())


def _normalise_name(name: str) -> str:
    text = re.sub(r"^\s*\d+\.\s*", "", name).replace("*", "").strip().lower()
    return re.sub(r"[\s_]+", "_", text)


def _roles(header: list[str]) -> dict[str, int]:
    """Map each role (date, close, ...) to the first column that plays it."""
    roles: dict[str, int] = {}
    for index, name in enumerate(header):
        key = _normalise_name(name)
        for role, aliases in ROLES.items():
            if key in aliases and role not in roles:
                roles[role] = index
    return roles


def _read_csv(path: Path, raw: bytes) -> tuple[Any, list[str], list[dict[str, Any]]]:
    """All cells as strings, plus the file line of each row; bad rows become rejects."""
    import polars as pl
    import pyarrow.csv as pacsv

    data = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        if b"\x00" in data[:65536]:
            raise UnicodeDecodeError("utf-8", data[:1], 0, 1, "NUL byte")
        first_line = data.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path.name} is not a text CSV file; expected {EXPECTED}") from exc
    header = next(csv.reader([first_line]), [])
    names = [f"c{i}" for i in range(len(header))]
    invalid: list[tuple[int, str, int]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((row.number or 0, row.text, row.actual_columns))
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(use_threads=False, skip_rows=1, column_names=names),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise SourceError(
            f"{path.name} is not a readable CSV file ({exc}); expected {EXPECTED}"
        ) from exc
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    bad_lines = sorted(line for line, _, _ in invalid)
    lines = list(range(2, 2 + frame.height))
    for bad in bad_lines:  # valid rows after a skipped one sit one line further down
        lines = [n + 1 if n >= bad else n for n in lines]
    frame = frame.with_columns(pl.Series("__line", lines, dtype=pl.Int64))
    rejects = [
        _reject(
            {"text": text},
            "unparseable",
            f"{path.name} line {line}: {found} fields where the header has {len(header)}",
        )
        for line, text, found in invalid
    ]
    return frame, header, rejects


def _read_parquet(path: Path, raw: bytes) -> tuple[Any, list[str], list[dict[str, Any]]]:
    """Every column as strings (typed dates as ISO dates), plus the row number as its line."""
    import polars as pl
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{path.name} is not a readable Parquet file ({exc})") from exc
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    columns = []
    for i, (name, dtype) in enumerate(frame.schema.items()):
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            column = (column.dt.convert_time_zone("UTC") if dtype.time_zone else column).dt.date()
        columns.append(column.cast(pl.String).alias(f"c{i}"))
    header = list(frame.columns)
    frame = frame.select(columns).with_row_index("__line", offset=1)
    return frame.with_columns(pl.col("__line").cast(pl.Int64)), header, []


def _normalise(
    frame: Any, header: list[str], roles: dict[str, int], symbol: str | None, file: str
) -> tuple[Any, Any, list[dict[str, Any]]]:
    """Parse the string cells into bars and actions; rows that do not parse become rejects."""
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
        _rejects_of(rejected, header, file),
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


def _rejects_of(rejected: Any, header: list[str], file: str) -> list[dict[str, Any]]:
    """Reject records (the raw row as JSON) for the rows that did not parse."""
    out = []
    for row in rejected.iter_rows(named=True):
        record = {h: row[f"c{i}"] for i, h in enumerate(header)}
        symbol = row["__symbol"] if is_valid_symbol(row["__symbol"] or "") else None
        detail = f"{file} line {row['__line']}: {row['__detail']}"
        out.append(_reject(record, row["__rule"], detail, symbol, row["__day"]))
    return out


def _reject(
    record: dict[str, Any],
    rule: str,
    detail: str,
    symbol: str | None = None,
    day: date | None = None,
) -> dict[str, Any]:
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
    return {
        "dataset": DATASET,
        "record_id": hashlib.sha1((DATASET + text).encode()).hexdigest(),
        "rule": rule,
        "detail": detail,
        "symbol": symbol,
        "ts": datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None,
        "record": text,
    }


def _reject_table(rejects: list[dict[str, Any]], source: str, stamp: datetime) -> pa.Table:
    rows = [{**r, "source": source, "quarantined_at": stamp} for r in rejects]
    return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)


def _arrow(frame: Any, schema: pa.Schema, ts_name: str, source: str, stamp: datetime) -> pa.Table:
    """A parsed frame (with ``day``) in the canonical ``schema``."""
    import polars as pl

    frame = frame.with_columns(
        pl.col("day").cast(pl.Datetime("us", "UTC")).alias(ts_name),
        pl.lit(source).alias("source"),
        pl.lit(stamp).cast(pl.Datetime("us", "UTC")).alias("ingested_at"),
    )
    return frame.select(schema.names).to_arrow().cast(schema)
