"""Airflow for the orchestration tests: one home and metadata database for the session.

Airflow reads its configuration when first imported, so the session fixture sets it up
(``AIRFLOW_HOME`` in a temporary folder, metadata in a database of its own on the tests'
PostgreSQL server, no example DAGs), migrates the database once with ``airflow db migrate``
and only then lets the tests import Airflow. Every test here uses it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.services.postgres import admin_sql

RETRIES = 2
RETRY_DELAY_S = 1.0


@dataclass(frozen=True)
class AirflowSetup:
    """Where the session's Airflow lives."""

    home: Path
    dags: Path
    metadata_url: str
    migrate_output: str


def airflow_command() -> list[str]:
    """The ``airflow`` command of this Python."""
    program = shutil.which("airflow", path=str(Path(sys.executable).parent))
    return [program] if program else [sys.executable, "-m", "airflow"]


def sqlalchemy_url(postgres_url: str) -> str:
    """``postgres_url`` as SQLAlchemy names it with the psycopg 3 driver."""
    return urlunsplit(urlsplit(postgres_url)._replace(scheme="postgresql+psycopg"))


@pytest.fixture(scope="session", autouse=True)
def airflow_setup(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowSetup]:
    """Airflow configured and migrated on PostgreSQL, with the DAG file in its DAGs folder."""
    # not importorskip: Airflow must not be imported before its configuration is in place
    if importlib.util.find_spec("airflow") is None:
        pytest.skip("the Airflow tests need pip install 'marketlake[airflow]'")
    from marketlake.airflow.dag_file import write_dag_file

    home = tmp_path_factory.mktemp("airflow")
    dags = home / "dags"
    write_dag_file(dags, retries=RETRIES, retry_delay_s=RETRY_DELAY_S)
    admin_sql(postgres_server, 'CREATE DATABASE "airflow_metadata"')
    parts = urlsplit(postgres_server)
    url = sqlalchemy_url(urlunsplit(parts._replace(path="/airflow_metadata")))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_HOME", str(home))
        patch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dags))
        patch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        patch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", url)
        # psycopg 3 serves Airflow's async connections too (it would pick asyncpg otherwise)
        patch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC", url)
        patch.setenv("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
        migrate = subprocess.run(
            [*airflow_command(), "db", "migrate"],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=300,
            check=False,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        yield AirflowSetup(home, dags, url, migrate.stdout + migrate.stderr)
