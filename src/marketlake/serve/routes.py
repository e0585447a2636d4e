"""The API's data endpoints under ``/api/v1``: symbols, bars, indicators, metrics, corporate
actions, quality findings, runs and stream windows. All are GET and read-only."""

from __future__ import annotations

from typing import Annotated, Any

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from marketlake.errors import ConfigError
from marketlake.serve.intervals import SPECS, Interval
from marketlake.serve.pages import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Order,
    SeriesQuery,
    list_page,
    series_page,
)
from marketlake.serve.reader import WarehouseReader
from marketlake.serve.responses import ARROW, CSV, page_response
from marketlake.serve.timerange import parse_range
from marketlake.symbols import parse_symbol


class Page(BaseModel):
    """A page of rows: ``data`` holds row objects keyed by column name; ``next`` links the
    following page (null on the last)."""

    data: list[dict[str, Any]]
    next: str | None


class ErrorDetail(BaseModel):
    """What went wrong."""

    status: int
    message: str


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorDetail


_ERROR = {"model": ErrorBody}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {**_ERROR, "description": "Bad parameter"},
    401: {**_ERROR, "description": "Missing or wrong bearer token"},
    404: {**_ERROR, "description": "Unknown symbol or path"},
    503: {**_ERROR, "description": "The warehouse is not there or busy"},
}
PAGE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON by default; CSV or Arrow IPC stream when the Accept header asks "
        '(the next page then in a Link rel="next" header)',
        "content": {CSV: {"schema": {"type": "string"}}, ARROW: {"schema": {"type": "string"}}},
    },
    **ERRORS,
}

SymbolPath = Annotated[str, Path(description="Ticker symbol, e.g. AAPL")]
_DATE_OR_TIME = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$"
Start = Annotated[
    str | None,
    Query(
        description="First instant, included: YYYY-MM-DD (the whole day) or ISO date-time",
        pattern=_DATE_OR_TIME,
    ),
]
End = Annotated[
    str | None,
    Query(
        description="Last instant, included: YYYY-MM-DD (the whole day) or ISO date-time",
        pattern=_DATE_OR_TIME,
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip")]
SortOrder = Annotated[Order, Query(description="asc: from start on; desc: latest first")]

router = APIRouter(prefix="/api/v1", tags=["data"])


def _reader(request: Request) -> WarehouseReader:
    reader: WarehouseReader = request.app.state.reader
    return reader


def _series(
    request: Request,
    table: str,
    symbol: str,
    start: str | None,
    end: str | None,
    limit: int,
    order: Order,
    ts_column: str = "ts",
) -> Response:
    query = SeriesQuery(
        table, parse_symbol(symbol), parse_range(start, end), limit, order, ts_column
    )
    rows, next_url = series_page(_reader(request), query, request.url)
    return page_response(rows, next_url, request.headers.get("accept"))


@router.get("/symbols", response_model=Page, responses=PAGE)
def symbols(request: Request, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> Response:
    """Every symbol loaded: its source and the span of sessions held."""
    rows, next_url = list_page(
        _reader(request), "SELECT * FROM symbols ORDER BY symbol", [], limit, offset, request.url
    )
    return page_response(rows, next_url, request.headers.get("accept"))


@router.get("/bars/{symbol}", response_model=Page, responses=PAGE)
def bars(
    request: Request,
    symbol: SymbolPath,
    start: Start = None,
    end: End = None,
    adjusted: Annotated[
        bool, Query(description="Daily prices back-adjusted for splits and dividends")
    ] = False,
    interval: Annotated[
        Interval,
        Query(description="1d, 1w, 1mo from daily bars; 1m, 5m, 1h from 1-minute bars"),
    ] = Interval.d1,
    limit: Limit = DEFAULT_LIMIT,
    order: SortOrder = Order.asc,
) -> Response:
    """OHLCV bars of one symbol; coarser intervals are resampled from the stored ones."""
    spec = SPECS[interval]
    if spec.intraday and adjusted:
        raise ConfigError(
            f"adjusted=true applies to daily intervals (1d, 1w, 1mo); {interval.value} bars "
            "are as traded"
        )
    table = "bars_1m" if spec.intraday else ("bars_1d_adjusted" if adjusted else "bars_1d")
    query = SeriesQuery(table, parse_symbol(symbol), parse_range(start, end), limit, order)
    rows, next_url = series_page(_reader(request), query, request.url, spec)
    return page_response(rows, next_url, request.headers.get("accept"))


@router.get("/indicators/{symbol}", response_model=Page, responses=PAGE)
def indicators(
    request: Request,
    symbol: SymbolPath,
    start: Start = None,
    end: End = None,
    limit: Limit = DEFAULT_LIMIT,
    order: SortOrder = Order.asc,
) -> Response:
    """Daily technical indicators (every indicator column the warehouse table holds)."""
    return _series(request, "indicators_1d", symbol, start, end, limit, order)


@router.get("/metrics/{symbol}", response_model=Page, responses=PAGE)
def metrics(
    request: Request,
    symbol: SymbolPath,
    start: Start = None,
    end: End = None,
    limit: Limit = DEFAULT_LIMIT,
    order: SortOrder = Order.asc,
) -> Response:
    """Daily metrics: returns, ranges, gaps and volatility."""
    return _series(request, "daily_metrics", symbol, start, end, limit, order)


@router.get("/actions/{symbol}", response_model=Page, responses=PAGE)
def actions(
    request: Request,
    symbol: SymbolPath,
    start: Start = None,
    end: End = None,
    limit: Limit = DEFAULT_LIMIT,
    order: SortOrder = Order.asc,
) -> Response:
    """Splits and dividends by ex-date (the dashboard's markers)."""
    return _series(request, "corporate_actions", symbol, start, end, limit, order, "ex_date")


_QUALITY = (
    "SELECT 'quarantine' AS check_name, ts, CAST(NULL AS TIMESTAMPTZ) AS ts_end, rule AS reason, "
    "detail, source FROM quarantine WHERE symbol = ? AND resolved_at IS NULL",
    "SELECT 'missing_session' AS check_name, ts, CAST(NULL AS TIMESTAMPTZ) AS ts_end, "
    "'missing' AS reason, CAST(NULL AS VARCHAR) AS detail, source FROM missing_sessions "
    "WHERE symbol = ?",
    "SELECT 'reconciliation' AS check_name, ts, ts_end, kind AS reason, detail, "
    "source_a || ' vs ' || source_b AS source FROM reconciliation WHERE symbol = ?",
)
QUALITY_SCHEMA = pa.schema(
    [
        ("check", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("ts_end", pa.timestamp("us", tz="UTC")),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("source", pa.string()),
    ]
)


@router.get("/quality/{symbol}", response_model=Page, responses=PAGE)
def quality(
    request: Request, symbol: SymbolPath, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> Response:
    """Data-quality findings of one symbol, by session: current quarantined records
    (check quarantine, reason: the rule), sessions missing against the exchange calendar
    (missing_session) and contradictions between origins (reconciliation)."""
    parsed = parse_symbol(symbol)
    reader = _reader(request)
    parts = []
    for sql in _QUALITY:
        found = reader.query(sql, [parsed])
        found = found.rename_columns(["check", *found.column_names[1:]])
        parts.append(found.cast(QUALITY_SCHEMA))
    rows = pa.concat_tables(parts)
    rows = rows.take(pc.sort_indices(rows, [("ts", "ascending"), ("check", "ascending")]))
    page = rows.slice(offset, limit)
    next_url = None
    if offset + limit < rows.num_rows:
        url = request.url.include_query_params(offset=offset + limit)
        next_url = url.path + "?" + url.query
    return page_response(page, next_url, request.headers.get("accept"))


@router.get("/runs", response_model=Page, responses=PAGE)
def runs(
    request: Request,
    run_id: Annotated[str | None, Query(description="Only this run's stages")] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> Response:
    """The pipeline run log, newest first: one row per stage of each run."""
    where, params = ("WHERE run_id = ? ", [run_id]) if run_id else ("", [])
    sql = f"SELECT * FROM runs {where}ORDER BY started_at DESC NULLS LAST, run_id, stage"
    rows, next_url = list_page(_reader(request), sql, params, limit, offset, request.url)
    return page_response(rows, next_url, request.headers.get("accept"))


@router.get("/stream/windows", response_model=Page, responses=PAGE)
def stream_windows(
    request: Request,
    symbol: Annotated[str | None, Query(description="Only this symbol's windows")] = None,
    kind: Annotated[
        str | None, Query(description="Only windows of this kind, e.g. ma_15m, sliding_15m_5m")
    ] = None,
    start: Start = None,
    end: End = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> Response:
    """Streaming window aggregates by window start (is_final once the watermark passed)."""
    span = parse_range(start, end)
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (("symbol", parse_symbol(symbol) if symbol else None), ("kind", kind)):
        if value:
            conditions.append(f"{column} = ?")
            params.append(value)
    if span.start is not None:
        conditions.append("window_start >= ?")
        params.append(span.start)
    if span.end is not None:
        conditions.append("window_start <= ?")
        params.append(span.end)
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    sql = f"SELECT * FROM stream_windows {where}ORDER BY window_start, symbol, kind"
    rows, next_url = list_page(_reader(request), sql, params, limit, offset, request.url)
    return page_response(rows, next_url, request.headers.get("accept"))
