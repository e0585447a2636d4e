"""Pages of rows in the format the ``Accept`` header asks for, and errors as JSON.

JSON (the default) is ``{"data": [row objects], "next": URL or null}``; CSV and Arrow IPC
(``text/csv``, ``application/vnd.apache.arrow.stream``) carry the rows alone and the next
page in a ``Link: <URL>; rel="next"`` header.
"""

from __future__ import annotations

import io
import json
import math
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from starlette.responses import JSONResponse, Response

from marketlake.serve.timerange import iso

CSV = "text/csv"
ARROW = "application/vnd.apache.arrow.stream"
JSON = "application/json"
MEDIA_TYPES = (JSON, CSV, ARROW)


def chosen_format(accept: str | None) -> str:
    """The media type to answer with: the first of ``accept`` (by quality) that is served,
    JSON when none is."""
    if not accept:
        return JSON
    offers = []
    for position, part in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        offers.append((-quality, position, media.lower()))
    for negative_quality, _, media in sorted(offers):
        if negative_quality < 0 and media in MEDIA_TYPES:
            return media
    return JSON


def page_response(rows: pa.Table, next_url: str | None, accept: str | None) -> Response:
    """``rows`` as a response in the format ``accept`` asks for, linking ``next_url``."""
    media = chosen_format(accept)
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
    if media == CSV:
        buffer = io.BytesIO()
        pa_csv.write_csv(rows, buffer)
        return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    if media == ARROW:
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, rows.schema) as writer:
            writer.write_table(rows)
        return Response(sink.getvalue(), media_type=ARROW, headers=headers)
    body = f'{{"data":{json_array(rows)},"next":{json.dumps(next_url)}}}'
    return Response(body, media_type=JSON, headers=headers)


def json_array(rows: pa.Table) -> str:
    """``rows`` as a JSON array of row objects, encoded by Polars (in Rust): timestamps in
    ISO 8601 UTC, NaN as null."""
    import polars as pl

    converted = pa.Table.from_arrays(
        [_json_column(column) for column in rows.columns], names=rows.column_names
    )
    frame = pl.from_arrow(converted)
    assert isinstance(frame, pl.DataFrame)
    return frame.write_json()


def json_rows(rows: pa.Table) -> list[dict[str, Any]]:
    """The rows of ``rows`` as JSON-ready objects: timestamps in ISO 8601 UTC, NaN as null.

    Columns are converted by Arrow compute kernels first, which is several times faster than
    converting each value in Python.
    """
    columns = [_json_column(column) for column in rows.columns]
    converted = pa.Table.from_arrays(columns, names=rows.column_names)
    plain: list[dict[str, Any]] = converted.to_pylist()
    return plain


def _json_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    type_ = column.type
    if pa.types.is_timestamp(type_):
        if type_.tz is None or type_.tz.upper() not in ("UTC", "+00:00", "ETC/UTC"):
            column = column.cast(pa.timestamp(type_.unit, tz="UTC"))
        text = pc.strftime(column.cast(pa.timestamp("us", tz="UTC")), format="%Y-%m-%dT%H:%M:%S")
        text = pc.replace_substring_regex(text, pattern=r"\.000000$", replacement="")
        return pc.binary_join_element_wise(text, "Z", "")
    if pa.types.is_floating(type_):
        return pc.if_else(pc.is_finite(column), column, pa.scalar(None, type_))
    if pa.types.is_date(type_):
        return column.cast(pa.string())
    if pa.types.is_decimal(type_):
        return column.cast(pa.float64())
    return column


def json_value(value: Any) -> Any:
    """One value made JSON-ready."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """``{"error": {"status": ..., "message": ...}}`` with ``status``."""
    return JSONResponse(
        {"error": {"status": status, "message": message}}, status_code=status, headers=headers
    )
