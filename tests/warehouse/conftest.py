"""Warehouse fixtures: one factory per backend, so every contract test runs on each of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from tests.services.snowflake import snowflake_url

from marketlake.schemas import BAR_SCHEMA
from marketlake.warehouse import Warehouse, open_warehouse
from marketlake.warehouse.duckdb import DuckDBWarehouse

__all__ = ["snowflake_url"]  # fixtures for these tests (PostgreSQL's are in tests/conftest.py)

OpenWarehouse = Callable[..., Warehouse]

# Each backend opens the same warehouse again on every call (read_only=True for a reader),
# given the test's folder and, for a server, the URL of the test's own database on it.
BACKENDS: dict[str, Callable[[Path, str, bool], Warehouse]] = {
    "duckdb": lambda folder, _, read_only: DuckDBWarehouse(folder / "w.duckdb", read_only),
    "duckdb-primary-keys": lambda folder, _, read_only: DuckDBWarehouse(
        folder / "w.duckdb", read_only, primary_keys=True
    ),
    "postgresql": lambda _, url, read_only: open_warehouse(url, read_only),
    "snowflake": lambda _, url, read_only: open_warehouse(url, read_only),
}
# The fixture giving a server backend's database URL (tests/services)
SERVER_URLS = {"postgresql": "postgres_url", "snowflake": "snowflake_url"}

START = datetime(2024, 1, 2, tzinfo=UTC)


@pytest.fixture(params=sorted(BACKENDS))
def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> OpenWarehouse:
    """Open this test's warehouse on the backend under test: ``open_backend(read_only=...)``."""
    factory = BACKENDS[request.param]
    fixture = SERVER_URLS.get(request.param)
    url = str(request.getfixturevalue(fixture)) if fixture else ""

    def open_(read_only: bool = False) -> Warehouse:
        return factory(tmp_path, url, read_only)

    open_.recipe = (request.param, tmp_path, url)  # type: ignore[attr-defined]  # for children
    return open_


@pytest.fixture
def warehouse(open_backend: OpenWarehouse) -> Iterator[Warehouse]:
    """A writable, empty warehouse on the backend under test."""
    with open_backend() as opened:
        yield opened


def bars(
    symbols: Sequence[str], days: int, close: float = 100.0, start: datetime = START
) -> pa.Table:
    """Daily bars, one per symbol and day; close = ``close`` + day number."""
    rows = [
        {
            "symbol": symbol,
            "ts": start + timedelta(days=day),
            "open": close + day - 0.5,
            "high": close + day + 1.0,
            "low": close + day - 1.0,
            "close": close + day,
            "volume": 1000.0 * (day + 1),
            "source": "test",
            "ingested_at": START + timedelta(days=400),
        }
        for symbol in symbols
        for day in range(days)
    ]
    return pa.Table.from_pylist(rows, schema=BAR_SCHEMA)


@pytest.fixture
def make_bars() -> Callable[..., pa.Table]:
    """Factory of small daily-bar tables (see :func:`bars`)."""
    return bars
