"""Who may listen where and who may read: loopback by default, a bearer token otherwise.

Listening on any address but loopback needs a token; with a token, every data endpoint,
``/metrics`` and the live feed require ``Authorization: Bearer TOKEN``. The dashboard's
files, ``/healthz`` and the OpenAPI description hold no data and stay open (the page asks
for the token). Only GET and HEAD are answered.
"""

from __future__ import annotations

import hmac
import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from marketlake.errors import ConfigError
from marketlake.serve.responses import error_response

OPEN_PATHS = ("/", "/healthz", "/openapi.json", "/docs", "/favicon.ico")
OPEN_PREFIXES = ("/static/",)
READ_METHODS = ("GET", "HEAD")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen on a non-loopback ``host`` without a token (ConfigError)."""
    if not token and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without a token: anyone who reaches it could read "
            "the warehouse; pass --token (or set serve.token, env MARKETLAKE_SERVE__TOKEN), "
            "or listen on 127.0.0.1"
        )


class AccessGuard:
    """ASGI middleware: read methods only, and the bearer token where one is set."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in READ_METHODS:
            response = error_response(
                405,
                f"{scope['method']} is not allowed: the API is read-only (GET only)",
                {"Allow": "GET, HEAD"},
            )
            await response(scope, receive, send)
            return
        path: str = scope["path"]
        guarded = not (path in OPEN_PATHS or path.startswith(OPEN_PREFIXES))
        if self.token and guarded and not self._authorised(scope):
            response = error_response(
                401,
                "a bearer token is required: send the header Authorization: Bearer TOKEN",
                {"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorised(self, scope: Scope) -> bool:
        assert self.token is not None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token):
                    return True
        return False
