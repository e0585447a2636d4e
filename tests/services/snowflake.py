"""Snowflake for tests: ``fakesnow`` (Snowflake's SQL on DuckDB) patched into this process.

The fixture ``snowflake_url`` patches ``snowflake.connector.connect`` for one test and gives a
URL whose databases live in the test's own folder, so separate connections (a writer, then a
reader) see the same tables. Processes run the CLI under ``fakesnow -d DIR -m marketlake``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

SNOWFLAKE_URL = "snowflake://analyst:s3cret-pw@testaccount/marketlake/analytics"


@pytest.fixture
def snowflake_url(tmp_path: Path) -> Iterator[str]:
    """A Snowflake warehouse URL served by fakesnow, in this process, for one test."""
    import fakesnow

    folder = tmp_path / "snowflake"
    folder.mkdir()
    with fakesnow.patch(db_path=folder):
        yield SNOWFLAKE_URL
