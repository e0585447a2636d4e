"""Lake fixtures: the same contract tests run on local disk and on S3 (SeaweedFS)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from marketlake.lake import LakeStorage, LakeTables
from marketlake.schemas import BAR_SCHEMA

TESTS_ROOT = str(Path(__file__).resolve().parents[1])
if TESTS_ROOT not in sys.path:
    sys.path.insert(0, TESTS_ROOT)

from services.seaweedfs import SeaweedFS  # noqa: E402

BarFactory = Callable[..., pa.Table]


@pytest.fixture(params=["local", "s3"])
def lake_storage(request: pytest.FixtureRequest, tmp_path: Path) -> LakeStorage:
    """An empty lake root on local disk or under a fresh prefix of the S3 test bucket."""
    if request.param == "local":
        return LakeStorage.from_url((tmp_path / "lake").as_uri())
    server: SeaweedFS = request.getfixturevalue("seaweedfs")
    url = f"s3://{server.bucket}/t-{uuid.uuid4().hex[:12]}"
    return LakeStorage.from_url(url, server.options())


@pytest.fixture
def lake_tables(lake_storage: LakeStorage) -> LakeTables:
    """Delta tables on ``lake_storage``."""
    return LakeTables(lake_storage)


@pytest.fixture
def make_bars() -> BarFactory:
    """Factory of daily bars: ``make_bars(["AAPL"], days=3, close=1.0, start_day=0)``."""

    def build(
        symbols: Sequence[str], days: int = 3, close: float = 1.0, start_day: int = 0
    ) -> pa.Table:
        base = datetime(2024, 1, 2, tzinfo=UTC)
        rows = [
            {
                "symbol": symbol,
                "ts": base + timedelta(days=start_day + d),
                "open": close,
                "high": close + 1,
                "low": close - 0.5,
                "close": close + d,
                "volume": 1000.0 + d,
                "source": "sim",
                "ingested_at": datetime(2024, 6, 1, tzinfo=UTC),
            }
            for symbol in symbols
            for d in range(days)
        ]
        return pa.Table.from_pylist(rows, schema=BAR_SCHEMA)

    return build
