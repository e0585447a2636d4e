"""``marketlake airflow dag``: write the DAG file Airflow parses into its DAGs folder."""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

from marketlake.errors import ConfigError, MissingExtraError

DAG_FILE_NAME = "stock_market_pipeline.py"

TEMPLATE = '''"""marketlake's batch pipeline as the Airflow DAG ``stock_market_pipeline``.

Written by ``marketlake airflow dag``. Parsing this file imports Airflow and marketlake's
small DAG module only; each task runs one stage of the run in a process of its own.
Configuration: the marketlake config file and MARKETLAKE_* variables of the workers, or the
Airflow Variable ``marketlake_config`` (TOML) and Connection ``marketlake_warehouse``.
"""

from datetime import date, timedelta

from marketlake.airflow.dag import stock_market_pipeline

dag = stock_market_pipeline(
    calendar={calendar!r},
    start_date=date.fromisoformat({start_date!r}),
    catchup={catchup!r},
    retries={retries!r},
    retry_delay=timedelta(seconds={retry_delay_s!r}),
)
'''


def write_dag_file(
    folder: Path,
    *,
    calendar: str = "XNYS",
    start_date: date = date(2024, 1, 2),
    catchup: bool = False,
    retries: int = 3,
    retry_delay_s: float = 60.0,
) -> Path:
    """Write the DAG file into ``folder`` (created if missing) and return its path."""
    if importlib.util.find_spec("airflow") is None:
        raise MissingExtraError("apache-airflow", "airflow")
    if retries < 0 or retry_delay_s < 0:
        raise ConfigError(
            f"--retries {retries} and --retry-delay {retry_delay_s} must not be negative"
        )
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output {folder} is a file: pass the Airflow DAGs folder")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DAG_FILE_NAME
    path.write_text(
        TEMPLATE.format(
            calendar=calendar,
            start_date=start_date.isoformat(),
            catchup=catchup,
            retries=retries,
            retry_delay_s=retry_delay_s,
        )
    )
    return path
