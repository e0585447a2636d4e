"""A real PostgreSQL server for tests: the system's when configured, else ``pgserver``'s.

``MARKETLAKE_TEST_POSTGRES_URL`` names a server the tests may create databases on (read
before the fixtures clear ``MARKETLAKE_*`` variables); without it the session starts
PostgreSQL 16 from the ``pgserver`` wheel on a Unix socket in a temporary folder. Each test
gets a database of its own (:func:`new_database`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

CONFIGURED_URL = os.environ.get("MARKETLAKE_TEST_POSTGRES_URL", "")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database, for the whole test session."""
    if CONFIGURED_URL:
        yield CONFIGURED_URL
        return
    import pgserver

    folder = Path(tmp_path_factory.mktemp("pg"))
    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


def new_database(server_url: str) -> str:
    """Create an empty database on the server and return its URL."""
    import adbc_driver_postgresql.dbapi as adbc

    name = f"t_{uuid.uuid4().hex[:12]}"
    with adbc.connect(server_url, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """The URL of an empty database of its own for one test."""
    return new_database(postgres_server)
