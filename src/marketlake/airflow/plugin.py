"""The Airflow plugin that registers marketlake's timetable (entry point ``airflow.plugins``).

Installing ``marketlake[airflow]`` is enough: Airflow finds the plugin through the package's
entry point, so the scheduler can read back DAGs scheduled by :class:`ExchangeSessionTimetable`.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from marketlake.airflow.timetable import ExchangeSessionTimetable


class MarketlakePlugin(AirflowPlugin):
    """Registers :class:`ExchangeSessionTimetable`."""

    name = "marketlake"
    timetables = [ExchangeSessionTimetable]  # noqa: RUF012 - Airflow's plugin interface
