"""``airflow db migrate`` creates Airflow's metadata on PostgreSQL and on SQLite."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.orchestration.conftest import AirflowSetup, airflow_command


def test_the_metadata_database_is_migrated_on_postgresql(
    airflow_setup: AirflowSetup, postgres_server: str
) -> None:
    import adbc_driver_postgresql.dbapi as adbc

    assert "Database migration done" in airflow_setup.migrate_output
    url = urlunsplit(urlsplit(postgres_server)._replace(path="/airflow_metadata"))
    with adbc.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_name IN ('alembic_version', 'dag_run', 'task_instance')"
        )
        assert cursor.fetchone() == (3,)


def test_airflow_db_migrate_on_sqlite(airflow_setup: AirflowSetup, tmp_path: Path) -> None:
    database = tmp_path / "airflow.db"
    env = os.environ.copy()
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{database}"
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC", None)
    proc = subprocess.run(
        [*airflow_command(), "db", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"alembic_version", "dag_run", "task_instance"} <= tables
