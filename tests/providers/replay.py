"""A local HTTP server that replays recorded provider responses (or scripted replies).

Importable from any test package (``from tests.providers.replay import ProviderServer``); the
``server`` fixture of ``tests/sources/conftest.py`` wraps it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["ProviderServer", "Reply", "Route", "Seen"]


@dataclass
class Reply:
    """One scripted answer of the server."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0

    @classmethod
    def json(cls, payload: object, status: int = 200) -> Reply:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


@dataclass
class Seen:
    """A request as the server saw it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


Route = Callable[[Seen], Reply | None]


class ProviderServer:
    """Serves scripted replies first, then asks ``route``; 404 otherwise.

    ``script`` holds ``(path prefix, reply)`` pairs, each used once, in order.
    """

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.script: list[tuple[str, Reply]] = []
        self.route: Route = lambda seen: None
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                seen = Seen(unquote(parts.path), dict(parse_qsl(parts.query)), dict(self.headers))
                reply = server.answer(seen)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            for i, (prefix, reply) in enumerate(self.script):
                if seen.path.startswith(prefix):
                    del self.script[i]
                    return reply
        return self.route(seen) or Reply(404, b'{"detail": "not found"}')

    def hits(self, prefix: str) -> list[Seen]:
        """Requests whose path starts with ``prefix``."""
        return [r for r in self.requests if r.path.startswith(prefix)]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
