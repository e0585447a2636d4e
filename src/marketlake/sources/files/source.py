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
never dropped silently. A file with no usable row is an error, never an empty load. Every row
names its file as its origin (``source`` is ``file:<file name>``, see :func:`file_origin`).

A single file that cannot be read is an error. In a folder, each file that cannot be read (not
text, not a price table, no usable row, another extension) is skipped and named with the reason
in :meth:`FileSource.skipped`, and the other files load; a folder with no usable file is an error.

This module holds the source itself; reading files into cells is in ``cells``, parsing
cells into bars and actions in ``rows`` and reject records in ``rejects``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from marketlake.errors import SourceError
from marketlake.records import Reject, reject_table
from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA
from marketlake.sources.base import HistoryBatch, HistorySource
from marketlake.sources.files.cells import (
    EXPECTED,
    ROLES,
    find_roles,
    read_csv_cells,
    read_parquet_cells,
)
from marketlake.sources.files.rejects import DATASET
from marketlake.sources.files.rows import PRICES, parse_rows, snap_ratio
from marketlake.symbols import is_valid_symbol, parse_symbols

__all__ = [
    "DATASET",
    "EXPECTED",
    "FORMATS",
    "PRICES",
    "ROLES",
    "FileSource",
    "file_origin",
    "snap_ratio",
    "symbol_from_name",
]

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class _Parsed:
    """One file, parsed: bars and actions without ``ingested_at``, rejects, and the bytes."""

    fmt: str
    raw: bytes
    bars: Any  # polars.DataFrame: symbol, day, open, high, low, close, volume
    actions: Any  # polars.DataFrame: symbol, day, kind, ratio, amount
    rejects: list[Reject]

    @property
    def symbols(self) -> list[str]:
        """Symbols with bars, actions or rejected rows (whose rows then go to quarantine)."""
        rejected = {r.symbol for r in self.rejects if r.symbol}
        found = set(self.bars["symbol"].to_list()) | set(self.actions["symbol"].to_list())
        return sorted(found | rejected)


class FileSource(HistorySource):
    """Bars read from one CSV/Parquet file or every such file in a folder (sorted by name).

    ``fmt`` (``"csv"`` or ``"parquet"``) overrides detection from the file extension. A file
    without a symbol column takes its symbol from its name (``AAPL.csv``,
    ``yahoofinance-SPY-20200901.csv``), else from ``symbols_hint`` when that names one symbol.
    Files of a folder that cannot be read are skipped and listed by :meth:`skipped`.
    """

    name: ClassVar[str] = "files"

    def __init__(
        self, path: Path, fmt: str | None = None, symbols_hint: Sequence[str] | None = None
    ) -> None:
        if fmt is not None and fmt not in ("csv", "parquet"):
            raise SourceError(f"unknown file format {fmt!r}: use 'csv' or 'parquet'")
        self.path = Path(path)
        self.fmt = fmt
        self.symbols_hint = parse_symbols(symbols_hint or [])
        self._cache: dict[Path, _Parsed] = {}
        self._usable: list[tuple[Path, _Parsed]] | None = None
        self._skipped: list[str] = []

    def files(self) -> list[Path]:
        """The files this source reads."""
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise SourceError(f"no file or folder at {self.path}")
        wanted = self._wanted()
        found = [p for p in sorted(self.path.iterdir()) if p.is_file() and _format_of(p) in wanted]
        if not found:
            raise SourceError(f"no {' or '.join(wanted)} files in {self.path}")
        return found

    def available_symbols(self) -> list[str]:
        """Every symbol found in the files."""
        return sorted({s for _, parsed in self._parsed_files() for s in parsed.symbols})

    def skipped(self) -> list[str]:
        """The files of the folder that were skipped, each as ``name: reason``."""
        self._parsed_files()
        return list(self._skipped)

    def notes(self) -> list[str]:
        """The skipped files, for the run summary."""
        return [f"skipped {reason}" for reason in self.skipped()]

    def _parsed_files(self) -> list[tuple[Path, _Parsed]]:
        """Every readable file, parsed; a folder's unreadable files are noted and left out."""
        if self._usable is not None:
            return self._usable
        if self.path.is_file():
            self._usable = [(self.path, self._parse(self.path))]
            return self._usable
        files = self.files()
        usable, skipped = [], self._other_files()
        for path in files:
            try:
                usable.append((path, self._parse(path)))
            except SourceError as exc:
                skipped.append(str(exc))
        for reason in skipped:
            log.warning("skipped %s", reason)
        if not usable:
            raise SourceError(
                f"no usable {' or '.join(self._wanted())} file in {self.path}: "
                + "; ".join(skipped)
            )
        self._usable, self._skipped = usable, skipped
        return usable

    def _wanted(self) -> list[str]:
        return [self.fmt] if self.fmt else ["csv", "parquet"]

    def _other_files(self) -> list[str]:
        """Visible files of the folder this source does not read, each with the reason."""
        wanted = self._wanted()
        suffixes = ", ".join(sorted(s for s, f in FORMATS.items() if f in wanted))
        return [
            f"{p.name}: not a {' or '.join(wanted)} file (read: {suffixes})"
            for p in sorted(self.path.iterdir())
            if p.is_file() and not p.name.startswith(".") and _format_of(p) not in wanted
        ]

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
        """One batch per file, filtered to ``symbols`` and to dates in [start, end].

        A symbol asked for that no file holds is a SourceError naming it.
        """
        import polars as pl

        wanted = parse_symbols(symbols)
        available = self.available_symbols()
        missing = sorted(set(wanted) - set(available))
        if missing:
            raise SourceError(
                f"symbol{'s' if len(missing) > 1 else ''} {', '.join(missing)} not found in "
                f"{self.path}; available: {available}"
            )
        stamp = datetime.now(UTC)
        for path, parsed in self._parsed_files():
            keep = pl.col("symbol").is_in(wanted) & pl.col("day").is_between(start, end)
            bars = parsed.bars.filter(keep)
            actions = parsed.actions.filter(keep)
            rejects = [r for r in parsed.rejects if r.symbol in (None, *wanted)]
            if bars.is_empty() and actions.is_empty() and not rejects:
                continue
            origin = file_origin(path)
            yield HistoryBatch(
                source=parsed.fmt,
                batch_id=f"{path.stem}-{hashlib.sha1(parsed.raw).hexdigest()[:12]}",
                bars=_arrow(bars, BAR_SCHEMA, "ts", origin, stamp),
                actions=_arrow(actions, CORPORATE_ACTION_SCHEMA, "ex_date", origin, stamp),
                raw=parsed.raw,
                raw_format=parsed.fmt,
                rejects=reject_table([replace(r, source=origin) for r in rejects], stamp),
            )

    def _parse(self, path: Path) -> _Parsed:
        if path not in self._cache:
            self._cache[path] = self._read(path)
        return self._cache[path]

    def _read(self, path: Path) -> _Parsed:
        fmt = self.fmt or _format_of(path)
        if fmt is None:
            raise SourceError(
                f"{path.name}: unknown file type; use .csv or .parquet (or --source csv|parquet)"
            )
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise SourceError(f"{path.name}: cannot be read: {exc}") from exc
        if not raw.strip():
            raise SourceError(f"{path.name}: empty file; expected columns {EXPECTED}")
        frame, header, rejects = (
            read_parquet_cells(path, raw) if fmt == "parquet" else read_csv_cells(path, raw)
        )
        roles = find_roles(header)
        if "date" not in roles or "close" not in roles:
            raise SourceError(
                f"{path.name}: no date and close columns in {header[:12]}; expected {EXPECTED}"
            )
        symbol = None if "symbol" in roles else self._symbol_of(path)
        bars, actions, more = parse_rows(frame, header, roles, symbol, path.name)
        rejects += more
        if bars.is_empty() and actions.is_empty():
            found = (
                f"all {len(rejects)} rows rejected, the first as {rejects[0].detail}"
                if rejects
                else "no data rows"
            )
            raise SourceError(f"{path.name}: no usable row ({found}); expected {EXPECTED}")
        return _Parsed(fmt, raw, bars, actions, rejects)

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


def file_origin(path: Path) -> str:
    """The origin its rows carry in ``source``: ``file:<file name>`` (``file:AAPL.csv``).

    Rows from one file keep one origin wherever the file is read from, so importing the same
    file again (or a newer export under the same name) revises its bars, while a different
    file that contradicts them is reconciled (see :mod:`marketlake.pipeline.reconcile`).
    """
    return f"file:{path.name}"


def _format_of(path: Path) -> str | None:
    return FORMATS.get(path.suffix.lower())


def _arrow(frame: Any, schema: pa.Schema, ts_name: str, source: str, stamp: datetime) -> pa.Table:
    """A parsed frame (with ``day``) in the canonical ``schema``."""
    import polars as pl

    frame = frame.with_columns(
        pl.col("day").cast(pl.Datetime("us", "UTC")).alias(ts_name),
        pl.lit(source).alias("source"),
        pl.lit(stamp).cast(pl.Datetime("us", "UTC")).alias("ingested_at"),
    )
    return frame.select(schema.names).to_arrow().cast(schema)
