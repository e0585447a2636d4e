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
    body = {"data": json_rows(rows), "next": next_url}
    return Response(
        json.dumps(body, allow_nan=False, separators=(",", ":")),
        media_type=JSON,
        headers=headers,
    )


def json_rows(rows: pa.Table) -> list[dict[str, Any]]:
    """The rows of ``rows`` as JSON-ready objects: timestamps in ISO 8601 UTC, NaN as null."""
    names = rows.column_names
    columns = [[json_value(value) for value in column.to_pylist()] for column in rows.columns]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


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
