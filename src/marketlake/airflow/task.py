"""What each task of the ``stock_market_pipeline`` DAG does when Airflow runs it.

A task starts one stage of one run in a process of its own
(``python -m marketlake.airflow.stage``), so a stage that dies takes only itself down, and
translates the outcome into Airflow's terms: a transient failure (or a stage process killed
by a signal) raises an error Airflow retries; a terminal failure raises
``AirflowFailException``, which fails the task without retry.

The marketlake run of a DAG run has the DAG run's id, so a retried or cleared task finds the
run it belongs to. The run's dates come from the DAG run's params ``start``/``end`` when
given, else from its data interval (the sessions that closed in it), else marketlake's default
range; ``symbols`` and ``source`` params override the configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from marketlake.airflow.stage import EXIT_TRANSIENT

CONFIG_VARIABLE = "marketlake_config"
"""The Airflow Variable holding a marketlake TOML configuration (the config file's content)."""
WAREHOUSE_CONNECTION = "marketlake_warehouse"
"""The Airflow Connection whose URI is the warehouse URL (see :func:`warehouse_url`)."""
# a run id names files in the lake: ``:`` (in Airflow's run ids) is not allowed there
_RUN_ID_CHARS = re.compile(r"[^A-Za-z0-9_.+\-]")


def run_stage_task(stage: str, **context: Any) -> str:
    """Run ``stage`` of the DAG run's marketlake run in a child process (an Airflow callable).

    Returns the marketlake run id (pushed to XCom). Raises ``AirflowFailException`` on a
    terminal failure and ``AirflowException`` on a transient one, so only the latter is
    retried.
    """
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    ti = context["ti"]
    run_id = marketlake_run_id(context["run_id"])
    retried_later = ti.try_number <= ti.max_tries
    command = [
        sys.executable,
        "-m",
        "marketlake.airflow.stage",
        "--run-id",
        run_id,
        "--stage",
        stage,
        "--attempt",
        str(ti.try_number),
        "--plan",
        json.dumps(run_plan(context)),
    ]
    if retried_later:
        command.append("--retried-later")
    with tempfile.TemporaryDirectory(prefix="marketlake-airflow-") as folder:
        env = stage_environment(os.environ, folder)
        proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    output = (proc.stdout + proc.stderr).strip()
    if output:
        print(output)
    if proc.returncode == 0:
        return run_id
    reason = _last_line(proc.stderr) or f"exit status {proc.returncode}"
    if proc.returncode < 0:
        raise AirflowException(
            f"the {stage} process of run {run_id} was killed by signal {-proc.returncode}: "
            "the stage is safe to run again"
        )
    if proc.returncode == EXIT_TRANSIENT:
        raise AirflowException(reason)
    raise AirflowFailException(reason)


def marketlake_run_id(dag_run_id: str) -> str:
    """The marketlake run id of the DAG run ``dag_run_id``: its characters a lake path may
    hold, the others turned into ``-`` (and a digest of the id added when any was)."""
    cleaned = _RUN_ID_CHARS.sub("-", dag_run_id).lstrip("_.:+-") or "airflow"
    if cleaned == dag_run_id and len(cleaned) <= 128:
        return cleaned
    digest = hashlib.sha256(dag_run_id.encode()).hexdigest()[:12]
    return f"{cleaned[:115]}-{digest}"


def run_plan(context: Mapping[str, Any]) -> dict[str, Any]:
    """The source, symbols and dates of the DAG run: params first, then its data interval."""
    params = context.get("params") or {}
    symbols = params.get("symbols")
    if isinstance(symbols, str):
        symbols = [s for s in symbols.replace(",", " ").split() if s]
    start, end = params.get("start"), params.get("end")
    if not start and not end:
        interval = (context.get("data_interval_start"), context.get("data_interval_end"))
        if interval[0] is not None and interval[1] is not None:
            from marketlake.airflow.timetable import sessions_closed_in

            timetable = getattr(context.get("dag"), "timetable", None)
            calendar = getattr(timetable, "calendar", "XNYS")
            sessions = sessions_closed_in(calendar, interval[0], interval[1])
            if sessions is not None:
                start, end = sessions
    return {
        "source": params.get("source") or None,
        "symbols": symbols or None,
        "start": _iso(start),
        "end": _iso(end),
    }


def stage_environment(environ: Mapping[str, str], folder: str) -> dict[str, str]:
    """The stage process's environment: ``environ`` plus the configuration kept in Airflow.

    The Variable :data:`CONFIG_VARIABLE` becomes the config file (written under ``folder``);
    the Connection :data:`WAREHOUSE_CONNECTION` the warehouse. ``MARKETLAKE_*`` variables
    already set win, as they win over a config file.
    """
    env = dict(environ)
    config = _airflow_variable(CONFIG_VARIABLE)
    if config:
        path = os.path.join(folder, "marketlake.toml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(config)
        env["MARKETLAKE_CONFIG"] = path
    if "MARKETLAKE_WAREHOUSE" not in env:
        warehouse = _airflow_connection_uri(WAREHOUSE_CONNECTION)
        if warehouse:
            env["MARKETLAKE_WAREHOUSE"] = warehouse
    return env


def _airflow_variable(key: str) -> str | None:
    from airflow.sdk import Variable

    value = Variable.get(key, default=None)
    return str(value) if value else None


def _airflow_connection_uri(conn_id: str) -> str | None:
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = Connection.get(conn_id)
    except AirflowNotFoundException:
        return None
    return warehouse_url(str(connection.get_uri()))


def warehouse_url(connection_uri: str) -> str:
    """The warehouse URL an Airflow Connection's URI stands for.

    Airflow keeps a URI's path as the Connection's ``schema`` and writes it back
    percent-encoded: ``duckdb:///tmp/w.duckdb`` comes back as ``duckdb:///tmp%2Fw.duckdb``
    and ``snowflake://u@acct/db/sch`` as ``snowflake://u@acct/db%2Fsch``. The path is decoded
    again; user, password and query stay as Airflow encoded them (marketlake decodes those).
    """
    from urllib.parse import unquote

    scheme, sep, rest = connection_uri.partition("://")
    if not sep:
        return connection_uri
    authority, slash, tail = rest.partition("/")
    path, question, query = tail.partition("?")
    return f"{scheme}://{authority}{slash}{unquote(path)}{question}{query}"


def _iso(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("error: ") if lines else ""
