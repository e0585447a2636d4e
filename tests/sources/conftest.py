"""Fixtures of the source tests: the recorded-response server, the recordings, the live gate."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect tests marked ``live`` unless MARKETLAKE_LIVE=1 (they are not skipped).

    Live Alpha Vantage tests also need MARKETLAKE_SOURCES__ALPHAVANTAGE__API_KEY.
    """
    enabled = os.environ.get("MARKETLAKE_LIVE") == "1"
    has_key = bool(os.environ.get("MARKETLAKE_SOURCES__ALPHAVANTAGE__API_KEY"))

    def off(item: pytest.Item) -> bool:
        if not item.get_closest_marker("live"):
            return False
        return not enabled or ("alphavantage" in item.name and not has_key)

    live = [item for item in items if off(item)]
    if live:
        config.hook.pytest_deselected(items=live)
        items[:] = [item for item in items if not off(item)]


@pytest.fixture
def yahoo_dir(real_data: Path) -> Path:
    """Recorded Yahoo chart responses."""
    return real_data / "yahoo_chart"


@pytest.fixture
def av_dir(real_data: Path) -> Path:
    """Recorded Alpha Vantage responses."""
    return real_data / "alpha_vantage"
