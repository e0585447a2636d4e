"""CSV and Parquet files read as string cells, and the roles their header columns play.

Reading keeps every cell as text in columns named ``c0, c1, ...`` beside the original header,
with each row's file line in ``__line``: typed Parquet dates become ISO dates, a timestamp with
a time zone the date in that zone. CSV text may be UTF-8 (with or without a byte-order mark),
UTF-16 with its mark, or Latin-1 / Windows-1252. CSV rows with the wrong number of fields become
``unparseable`` rejects instead of stopping the read. Header names are matched to roles (date,
close, ...) case-insensitively, ignoring numbering ("1. open") and footnote marks ("Close*").
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pyarrow as pa

from marketlake.errors import SourceError
from marketlake.records import Reject
from marketlake.sources.files.rejects import make_reject

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
EXPECTED = "Date, Open, High, Low, Close, Volume (optionally Symbol)"


def _normalise_name(name: str) -> str:
    text = re.sub(r"^\s*\d+\.\s*", "", name).replace("*", "").strip().lower()
    return re.sub(r"[\s_]+", "_", text)


def find_roles(header: list[str]) -> dict[str, int]:
    """Map each role (date, close, ...) to the first column that plays it."""
    roles: dict[str, int] = {}
    for index, name in enumerate(header):
        key = _normalise_name(name)
        for role, aliases in ROLES.items():
            if key in aliases and role not in roles:
                roles[role] = index
    return roles


def text_bytes(path: Path, raw: bytes) -> bytes:
    """The text of a CSV file as UTF-8: a byte-order mark is dropped, UTF-16 (with its mark)
    and Latin-1 / Windows-1252 text are re-encoded; a binary file is a SourceError."""
    for mark, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if raw.startswith(mark):
            try:
                return raw[len(mark) :].decode(codec).encode("utf-8")
            except UnicodeDecodeError as exc:
                raise SourceError(f"{path.name}: not readable as {codec} text ({exc})") from exc
    data = raw.removeprefix(b"\xef\xbb\xbf")
    if b"\x00" in data[:65536]:
        raise SourceError(f"{path.name}: not a text CSV file (binary content); expected {EXPECTED}")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        data = text.encode("utf-8")
    return data


def read_csv_cells(path: Path, raw: bytes) -> tuple[Any, list[str], list[Reject]]:
    """All cells as strings, plus the file line of each row; bad rows become rejects."""
    import polars as pl
    import pyarrow.csv as pacsv

    data = text_bytes(path, raw)
    first_line = data.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
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
    except pa.ArrowInvalid as exc:
        raise SourceError(
            f"{path.name}: not a readable CSV file ({exc}); expected {EXPECTED}"
        ) from exc
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    bad_lines = sorted(line for line, _, _ in invalid)
    lines = list(range(2, 2 + frame.height))
    for bad in bad_lines:  # valid rows after a skipped one sit one line further down
        lines = [n + 1 if n >= bad else n for n in lines]
    frame = frame.with_columns(pl.Series("__line", lines, dtype=pl.Int64))
    rejects = [
        make_reject(
            {"text": text},
            "unparseable",
            f"{path.name} line {line}: {found} fields where the header has {len(header)}",
        )
        for line, text, found in invalid
    ]
    return frame, header, rejects


def read_parquet_cells(path: Path, raw: bytes) -> tuple[Any, list[str], list[Reject]]:
    """Every column as strings (typed dates as ISO dates), plus the row number as its line."""
    import polars as pl
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{path.name}: not a readable Parquet file ({exc})") from exc
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    columns = []
    for i, (name, dtype) in enumerate(frame.schema.items()):
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            column = column.dt.date()  # the date where the time was written: the session
        columns.append(column.cast(pl.String).alias(f"c{i}"))
    header = list(frame.columns)
    frame = frame.select(columns).with_row_index("__line", offset=1)
    return frame.with_columns(pl.col("__line").cast(pl.Int64)), header, []
