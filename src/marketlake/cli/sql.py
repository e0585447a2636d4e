"""``marketlake sql``: run one query on the warehouse (read-only) and format the rows."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from marketlake.errors import ConfigError, TerminalError
from marketlake.warehouse.base import WarehouseNotFoundError
from marketlake.warehouse.registry import open_warehouse

MAX_TABLE_ROWS = 1000  # the table format shows at most this many rows
_NUMERIC = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)


def run_sql(warehouse_url: str, query: str, fmt: str = "table") -> str:
    """Run ``query`` on a read-only connection and return the rows as table, csv or json."""
    formatter = FORMATS.get(fmt)
    if formatter is None:
        raise ConfigError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    try:
        with open_warehouse(warehouse_url, read_only=True) as warehouse:
            result = warehouse.query(query)
    except WarehouseNotFoundError as exc:
        raise TerminalError(f"{exc}: run `marketlake run` first to load it") from exc
    return formatter(result)


def format_table(result: pa.Table) -> str:
    """The rows as a text table (the first :data:`MAX_TABLE_ROWS`), with a row count."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    shown = result.slice(0, MAX_TABLE_ROWS)
    caption = f"{result.num_rows:,} row{'' if result.num_rows == 1 else 's'}"
    if shown.num_rows < result.num_rows:
        caption = f"first {shown.num_rows:,} of {caption}; use --format csv or json for all"
    table = Table()
    for field in result.schema:
        numeric = any(check(field.type) for check in _NUMERIC)
        table.add_column(Text(field.name), justify="right" if numeric else "left", no_wrap=True)
    for row in _rows(shown):
        table.add_row(*(Text(_display(value)) for value in row))
    measure = Console(width=100_000, file=io.StringIO())
    width = measure.measure(table).maximum
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=max(width, len(caption)), color_system=None, soft_wrap=False
    )
    console.print(table)
    console.print(caption, markup=False, highlight=False)
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def format_csv(result: pa.Table) -> str:
    """The rows as CSV with a header; timestamps in ISO 8601, nulls empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.column_names)
    for row in _rows(result):
        writer.writerow(_csv_value(value) for value in row)
    return buffer.getvalue()


def format_json(result: pa.Table) -> str:
    """The rows as a JSON list of objects; timestamps in ISO 8601, NaN and nulls as null."""
    names = _unique_names(result.column_names)
    records = [
        {name: _json_value(value) for name, value in zip(names, row, strict=True)}
        for row in _rows(result)
    ]
    return json.dumps(records, indent=2, allow_nan=False) + "\n"


FORMATS: dict[str, Callable[[pa.Table], str]] = {
    "table": format_table,
    "csv": format_csv,
    "json": format_json,
}


def _rows(result: pa.Table) -> Iterator[tuple[Any, ...]]:
    for batch in result.to_batches():
        columns = [column.to_pylist() for column in batch.columns]
        yield from zip(*columns, strict=True)


def _unique_names(names: list[str]) -> list[str]:
    """Column names made unique (``ts``, ``ts_2``) so no JSON key hides another."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, pa.MonthDayNano):  # an interval: ISO 8601 duration
        return f"P{value.months}M{value.days}DT{value.nanoseconds / 1e9:g}S"
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return str(value)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | int | str):
        return value
    converted = _json_value(value)
    return json.dumps(converted) if isinstance(converted, dict | list) else str(converted)


def _display(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        text = f"{value:.6f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    converted = _csv_value(value)
    return converted if isinstance(converted, str) else str(converted)
