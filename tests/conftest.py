"""Shared fixtures: every test gets its own home folder and calendar cache."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.providers.replay import ProviderServer
from tests.services.postgres import postgres_server, postgres_url
from tests.services.seaweedfs import (  # noqa: F401 - the session's S3 servers
    _seaweedfs_for_outages,
    seaweedfs,
    seaweedfs_to_stop,
)
from tests.services.tansu import tansu_url  # noqa: F401 - the session's Kafka-protocol broker
from tests.services.tcp_proxy import proxied_broker  # noqa: F401 - a broker that can be cut off

# one PostgreSQL server for the whole session, whichever folders use it
__all__ = ["postgres_server", "postgres_url"]

REAL_DATA = Path(__file__).resolve().parent / "data"
# Continuous integration installs every system program the tests need, so there a skipped
# test means something is missing: it fails instead (read once, before fixtures clear the
# MARKETLAKE_* variables).
SKIPS_FAIL = os.environ.get("MARKETLAKE_TEST_SKIPS_FAIL") == "1"


_HANDLERS_AT_START: dict[str, list[logging.Handler]] = {}


def _loggers() -> list[logging.Logger]:
    manager = logging.Logger.manager
    named = [lg for lg in manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    return [logging.getLogger(), *named]


def pytest_configure(config: pytest.Config) -> None:
    """Note each logger's handlers before any test runs (see :func:`pytest_unconfigure`)."""
    for logger in _loggers():
        _HANDLERS_AT_START[logger.name] = list(logger.handlers)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Take off the handlers libraries added during the tests.

    Airflow configures logging in the test process with a root handler on the output pytest
    captured, which is closed once the session ends; exit handlers that log afterwards
    (pgserver's, py4j's) then printed "--- Logging error ---" tracebacks.
    """
    for logger in _loggers():
        before = _HANDLERS_AT_START.get(logger.name, [])
        for handler in [h for h in logger.handlers if h not in before]:
            logger.removeHandler(handler)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Turn a skip into a failure when ``MARKETLAKE_TEST_SKIPS_FAIL=1``."""
    report = yield
    if SKIPS_FAIL and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped where every test must run: {report.longrepr}"
    return report


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    for name in list(__import__("os").environ):
        if name.startswith("MARKETLAKE_"):
            monkeypatch.delenv(name)
    cache = tmp_path_factory.getbasetemp() / "calendar-cache"
    monkeypatch.setenv("MARKETLAKE_CACHE_DIR", str(cache))
    yield
    # loading settings with an [indicators] set gives indicators_1d its columns; the next
    # test starts from the defaults again
    from marketlake.analytics.indicator_set import DEFAULT_INDICATORS
    from marketlake.catalogue import use_indicator_schema

    use_indicator_schema(DEFAULT_INDICATORS.schema)
    # ``marketlake run`` freezes the objects it finds for the garbage collector, as a process
    # that ends with the run may; the test process goes on
    gc.unfreeze()


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    """A fresh local server replaying recorded provider responses."""
    srv = ProviderServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty marketlake home folder."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real market data files the tests read, kept in ``tests/data``.

    ``tests/data/MANIFEST.csv`` names each file's origin and licence.
    """
    if not REAL_DATA.is_dir():
        raise RuntimeError(f"real data folder not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def spark_session() -> Iterator[object]:
    """One small local Spark session for the whole test session (engines join it)."""
    pytest.importorskip("pyspark", reason="the Spark tests need pip install 'marketlake[spark]'")
    import shutil
    import sys

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("the Spark tests need Java 17+ (apt-get install openjdk-17-jre-headless)")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("marketlake-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    try:
        yield session
    finally:
        session.stop()
