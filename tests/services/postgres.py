"""A real PostgreSQL server for tests: the system's when configured, else ``pgserver``'s.

``MARKETLAKE_TEST_POSTGRES_URL`` names a server the tests may create databases on (read
before the fixtures clear ``MARKETLAKE_*`` variables); without it the session starts
PostgreSQL 16 from the ``pgserver`` wheel on a Unix socket in a temporary folder. Each test
gets a database of its own (:func:`new_database`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

CONFIGURED_URL = os.environ.get("MARKETLAKE_TEST_POSTGRES_URL", "")
# A role that must log in with its password (pgserver trusts every other local login; a
# configured server is expected to check passwords).
PASSWORD_ROLE = "marketlake_password_check"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database, for the whole test session."""
    if CONFIGURED_URL:
        yield CONFIGURED_URL
        return
    import pgserver

    # not under pytest's base folder: running as root, pgserver runs PostgreSQL as its own
    # user, who may not enter that folder
    folder = Path(tempfile.mkdtemp(prefix="marketlake-pg-"))
    server = pgserver.get_server(folder, cleanup_mode="stop")
    hba = folder / "pg_hba.conf"
    hba.write_text(f"local all {PASSWORD_ROLE} scram-sha-256\n" + hba.read_text())
    url = str(server.get_uri())
    # a throw-away server: no waiting for the disk (shutdown would flush every test database)
    for setting in ("fsync", "synchronous_commit", "full_page_writes"):
        admin_sql(url, f"ALTER SYSTEM SET {setting} = off")
    admin_sql(url, "SELECT pg_reload_conf()")
    try:
        yield url
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def admin_sql(server_url: str, sql: str) -> None:
    """Run ``sql`` on the server as the administrator, outside a transaction."""
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(server_url, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(sql)


def new_database(server_url: str) -> str:
    """Create an empty database on the server and return its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin_sql(server_url, f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def password_role(server_url: str, password: str) -> str:
    """Create (or reset) :data:`PASSWORD_ROLE` with ``password``; return its login URL without
    a password."""
    admin_sql(
        server_url,
        f"DO $$ BEGIN CREATE ROLE {PASSWORD_ROLE} LOGIN; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )
    admin_sql(server_url, f"ALTER ROLE {PASSWORD_ROLE} PASSWORD '{password}'")
    parts = urlsplit(server_url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{PASSWORD_ROLE}@{host}"))


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """The URL of an empty database of its own for one test."""
    return new_database(postgres_server)
