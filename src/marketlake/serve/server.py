"""Run the application with uvicorn on the host and port of the ``[serve]`` settings."""

from __future__ import annotations

from marketlake.serve.app import ServeOptions, create_app
from marketlake.serve.security import check_bind
from marketlake.settings import Settings


def serve_options(settings: Settings) -> ServeOptions:
    """The application options of ``settings`` (refusing a non-loopback host without token)."""
    token = settings.serve.token.get_secret_value() if settings.serve.token else None
    check_bind(settings.serve.host, token)
    return ServeOptions(settings.warehouse_url, settings.home, token)


def run_server(settings: Settings) -> None:
    """Serve until interrupted."""
    import uvicorn

    app = create_app(serve_options(settings))
    uvicorn.run(
        app,
        host=settings.serve.host,
        port=settings.serve.port,
        log_level="warning",
        access_log=False,
        server_header=False,
    )
