"""The Spark session of the engine: checks what Spark needs, then starts or joins a session.

A session already running in this process (a ``spark-submit`` driver, a notebook, the tests)
is joined and left running; otherwise one is started from the ``[spark]`` settings and
stopped when the engine closes. Every session runs in UTC, so Spark's timestamps are the
lake's.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from marketlake.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from marketlake.settings import SparkSettings

JAVA_INSTALL = "a Java 17+ runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"

FIXED_CONF = {
    # Daily bars are session dates at midnight UTC: any other zone shifts them.
    "spark.sql.session.timeZone": "UTC",
}
DEFAULT_CONF = {
    # A batch job holds thousands to millions of bars: the default 200 shuffle partitions
    # cost more in scheduling than the work itself.
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.showConsoleProgress": "false",
}


def find_java() -> Path:
    """The ``java`` Spark will start: ``$JAVA_HOME/bin/java``, else the first on ``PATH``."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
        raise ConfigError(
            f"the Spark engine needs Java: JAVA_HOME={home} has no bin/java; "
            f"point JAVA_HOME at {JAVA_INSTALL}"
        )
    found = shutil.which("java")
    if found is None:
        raise ConfigError(
            f"the Spark engine needs Java: no java on PATH and JAVA_HOME is not set; "
            f"install {JAVA_INSTALL} or set JAVA_HOME"
        )
    return Path(found)


def import_pyspark() -> None:
    """Import PySpark or say which extra to install."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("pyspark", "spark") from exc


def spark_conf(settings: SparkSettings) -> dict[str, str]:
    """The configuration a new session gets: defaults, then ``[spark] conf``, then UTC."""
    return {**DEFAULT_CONF, **settings.conf, **FIXED_CONF}


@dataclass
class SessionHandle:
    """A Spark session and whether the engine started it (and so stops it)."""

    session: SparkSession
    owned: bool
    start_s: float = 0.0  # seconds to start the JVM and the session (0 when joined)

    def describe(self) -> dict[str, str | float]:
        """Spark version, master and application id (for the run record)."""
        context = self.session.sparkContext
        return {
            "spark_session_start_s": round(self.start_s, 3),
            "spark_version": self.session.version,
            "spark_master": str(context.master),
            "spark_app_id": str(context.applicationId),
        }

    def stop(self) -> None:
        """Stop the session if the engine started it."""
        if self.owned:
            self.session.stop()


def open_session(settings: SparkSettings) -> SessionHandle:
    """Join the session running in this process, or start one from ``settings``."""
    import_pyspark()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    running = SparkContext._active_spark_context is not None
    if running:
        session = SparkSession.builder.getOrCreate()
        for key, value in FIXED_CONF.items():
            session.conf.set(key, value)
        return SessionHandle(session, owned=False)
    find_java()
    # Python workers must run this interpreter, which has marketlake and its kernels.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(settings.master).appName(settings.app_name)
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    began = time.perf_counter()
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # the JVM failed to start: Py4J and Spark raise many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"starting Spark (master {settings.master}) failed: {first}; it needs {JAVA_INSTALL}"
        ) from exc
    return SessionHandle(session, owned=True, start_s=time.perf_counter() - began)
