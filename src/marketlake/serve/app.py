"""The FastAPI application: the API, the live feed, ``/metrics``, ``/healthz`` and the
dashboard's files (shipped in the package, so the page needs no internet)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response, StreamingResponse

from marketlake.errors import ConfigError, MarketlakeError, SymbolError, TransientError
from marketlake.serve.live import LiveFeed, event_stream
from marketlake.serve.metrics import HttpMetrics, PipelineCollector, RequestCounter
from marketlake.serve.pages import UnknownSymbolError
from marketlake.serve.reader import WarehouseMissingError, WarehouseReader
from marketlake.serve.responses import error_response
from marketlake.serve.routes import ERRORS, router
from marketlake.serve.security import AccessGuard
from marketlake.symbols import parse_symbols
from marketlake.warehouse.base import QueryError

STATIC = Path(str(files("marketlake.serve") / "static"))


@dataclass(frozen=True)
class ServeOptions:
    """What the application serves: the warehouse URL, the home folder (stream status),
    the bearer token (None: no token) and how often the live feed polls."""

    warehouse_url: str
    home: Path
    token: str | None = None
    live_interval_s: float = 1.0


def create_app(options: ServeOptions) -> FastAPI:
    """The application for ``options`` (uvicorn runs it; tests call it in process)."""
    reader = WarehouseReader(options.warehouse_url)
    feed = LiveFeed(reader, options.live_interval_s)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await feed.stop()
        reader.close()

    app = FastAPI(
        title="marketlake",
        summary="Market data from the marketlake warehouse, read-only.",
        version="1",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.reader = reader
    app.state.feed = feed
    registry = CollectorRegistry(auto_describe=True)
    registry.register(PipelineCollector(reader, options.home))
    http = HttpMetrics(registry)
    _add_error_handlers(app)
    app.include_router(router)

    @app.get(
        "/api/v1/live",
        tags=["live"],
        responses={
            200: {
                "description": "Server-Sent Events: bar, window and alert, each a JSON row",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **ERRORS,
        },
    )
    async def live(
        request: Request,
        symbols: Annotated[
            str | None, Query(description="Comma-separated symbols (default: all)")
        ] = None,
    ) -> StreamingResponse:
        """1-minute bars, stream windows and alerts as they land in the warehouse."""
        wanted = {str(s) for s in parse_symbols(symbols.split(","))} if symbols else None
        return StreamingResponse(
            event_stream(feed, wanted, request.is_disconnected),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        """The server is up (the warehouse is not touched)."""
        return {"status": "ok"}

    @app.get(
        "/metrics",
        tags=["service"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **ERRORS},
    )
    def metrics() -> Response:
        """Prometheus metrics in the text exposition format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(AccessGuard, token=options.token)
    app.add_middleware(RequestCounter, metrics=http)
    return app


_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": {"status", "message"}}``: bad parameters 400, unknown
    symbols 404, a missing or busy warehouse 503."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'][1:]) or 'request'}: {error['msg']}"
            for error in exc.errors()
        )
        return error_response(400, problems or "invalid request")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = "no such path: see /openapi.json for the API"
        return error_response(exc.status_code, message, dict(exc.headers or {}))

    @app.exception_handler(MarketlakeError)
    async def marketlake_error(_: Request, exc: MarketlakeError) -> Response:
        if isinstance(exc, UnknownSymbolError):
            return error_response(404, str(exc))
        if isinstance(exc, ConfigError | SymbolError):
            return error_response(400, str(exc))
        if isinstance(exc, WarehouseMissingError | TransientError):
            return error_response(503, str(exc), {"Retry-After": "1"})
        if isinstance(exc, QueryError):
            return error_response(500, "the warehouse could not answer the query")
        return error_response(500, str(exc))
