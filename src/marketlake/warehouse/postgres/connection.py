"""PostgreSQL connections through ADBC: URLs, one-line errors and which failures are transient.

``postgresql://user:password@host:port/database`` (or ``postgres://``), or a Unix socket with
``?host=/path/to/socket/folder``. libpq's own variables (``PGPASSWORD``, ``~/.pgpass``) supply a
password the URL leaves out.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import adbc_driver_postgresql.dbapi as adbc

from marketlake.errors import ConfigError
from marketlake.redaction import redact_url
from marketlake.warehouse.connection import connect_with_retry, first_line

SCHEMES = ("postgresql", "postgres")
# libpq connection failures that may clear up by themselves (the server is down or starting)
_TRANSIENT_CONNECT = re.compile(
    r"connection refused|could not connect|no such file or directory|timeout expired"
    r"|starting up|shutting down|too many clients|server closed the connection",
    re.IGNORECASE,
)
# SQLSTATE classes and codes worth retrying: connection exceptions, serialization failures,
# deadlocks, lock timeouts, an administrator's shutdown, too many connections
_TRANSIENT_STATES = ("08", "40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300")


def postgres_location(url: str) -> str:
    """Where ``url`` points, safe to print: ``host:port/database`` (the socket folder for a
    Unix socket), never the password."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError(f"not a PostgreSQL URL: {redact_url(url)!r}; use postgresql://...")
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    port = query.get("port", [str(parts.port or 5432)])[0]
    database = parts.path.lstrip("/") or query.get("dbname", [""])[0] or "(default database)"
    where = host if host.startswith("/") else f"{host}:{port}"
    return f"{where}/{database}"


def password_of(url: str) -> str:
    """The password a URL carries (in the user part or ``?password=``), or ``""``."""
    parts = urlsplit(url)
    return parts.password or parse_qs(parts.query).get("password", [""])[0]


def is_transient(error: Exception) -> bool:
    """True when a driver error may succeed on a new attempt."""
    state = getattr(error, "sqlstate", None) or ""
    if state:
        return any(state.startswith(prefix) for prefix in _TRANSIENT_STATES)
    return bool(_TRANSIENT_CONNECT.search(str(error)))


def connect(url: str) -> Any:
    """An ADBC connection to ``url`` in UTC, retried while the server cannot be reached."""
    location = postgres_location(url)
    secrets = (password_of(url),)
    uri = "postgresql" + url[url.index("://") :]

    def describe(exc: Exception) -> str:
        reason = first_line(str(exc).replace("IO: [libpq] Failed to connect: ", ""), secrets)
        return f"cannot connect to the PostgreSQL warehouse at {location}: {reason}"

    connection = connect_with_retry(lambda: adbc.connect(uri), is_transient, describe)
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
    connection.commit()
    return connection


def numbered_parameters(sql: str) -> str:
    """``sql`` with each ``?`` outside quotes turned into ``$1``, ``$2``… (PostgreSQL's marks)."""
    out: list[str] = []
    quote = ""
    number = 0
    for char in sql:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "?":
            number += 1
            out.append(f"${number}")
            continue
        out.append(char)
    return "".join(out)
