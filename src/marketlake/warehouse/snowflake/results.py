"""Rows the Snowflake connector fetched, as an Arrow table typed from the cursor's description.

Results are built from ``fetchall()`` rather than ``fetch_arrow_all()``, which fakesnow lacks,
so tests and real accounts take the same path. ``NUMBER(p, 0)`` becomes int64, timestamps
with a time zone become UTC, and names Snowflake upper-cased come back in lower case.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pyarrow as pa

# cursor.description type codes (snowflake.connector.constants.FIELD_TYPES) -> Arrow types
_ARROW_TYPES: dict[int, pa.DataType] = {
    1: pa.float64(),  # REAL
    2: pa.string(),  # TEXT
    3: pa.date32(),  # DATE
    5: pa.string(),  # VARIANT
    6: pa.timestamp("us", tz="UTC"),  # TIMESTAMP_LTZ
    7: pa.timestamp("us", tz="UTC"),  # TIMESTAMP_TZ
    8: pa.timestamp("us"),  # TIMESTAMP_NTZ
    12: pa.time64("us"),  # TIME
    13: pa.bool_(),  # BOOLEAN
}


def to_arrow(description: Sequence[Any], rows: list[tuple[Any, ...]]) -> pa.Table:
    """Rows fetched by the connector as an Arrow table, typed from the cursor's description."""
    names = [_name(column[0]) for column in description]
    arrays = []
    for index, column in enumerate(description):
        values = [row[index] for row in rows]
        arrays.append(_array(values, column[1], column[5]))
    return pa.Table.from_arrays(arrays, names=names)


def _array(values: list[Any], type_code: int, scale: int | None) -> pa.Array:
    if type_code == 0:  # FIXED: NUMBER(p, s)
        if not scale:
            return pa.array([None if v is None else int(v) for v in values], pa.int64())
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    arrow_type = _ARROW_TYPES.get(type_code)
    if arrow_type is not None and pa.types.is_timestamp(arrow_type) and arrow_type.tz:
        values = [_utc(v) for v in values]
    if arrow_type is None:
        return pa.array([_plain(v) for v in values])
    return pa.array(values, arrow_type)


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | time | datetime | str | int | float | bool) or value is None:
        return value
    return str(value)


def _name(name: str) -> str:
    """A result column's name: lower case when Snowflake upper-cased it."""
    return name.lower() if name == name.upper() else name
