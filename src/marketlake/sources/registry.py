"""Historical sources chosen by name: ``sim``, ``csv``, ``parquet``, ``yahoo``, ``alphavantage``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketlake.errors import ConfigError

if TYPE_CHECKING:
    from marketlake.settings import Settings
    from marketlake.sources.base import HistorySource

HISTORY_SOURCES: tuple[str, ...] = ("sim", "csv", "parquet", "yahoo", "alphavantage")


def create_history_source(settings: Settings) -> HistorySource:
    """The historical source named by ``settings.source``, configured from ``settings``."""
    name = settings.source.strip().lower()
    if name == "sim":
        from marketlake.sources.sim import SimSource

        return SimSource(seed=settings.sources.sim.seed, calendar=settings.calendar)
    if name in ("csv", "parquet"):
        from marketlake.sources.files import FileSource

        path = settings.sources.files.path
        if path is None:
            raise ConfigError(
                f"source {name!r} reads files: pass --path FILE_OR_FOLDER "
                "(or set MARKETLAKE_SOURCES__FILES__PATH)"
            )
        return FileSource(path, fmt=name)
    if name == "yahoo":
        try:
            from marketlake.sources.yahoo import YahooSource
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"source 'yahoo' is not available in this installation: {exc}"
            ) from exc
        return YahooSource(settings.sources.yahoo, calendar=settings.calendar)
    if name == "alphavantage":
        try:
            from marketlake.sources.alphavantage import AlphaVantageSource
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"source 'alphavantage' is not available in this installation: {exc}"
            ) from exc
        return AlphaVantageSource(settings.sources.alphavantage, calendar=settings.calendar)
    raise ConfigError(
        f"unknown source {settings.source!r}; valid sources: {', '.join(HISTORY_SOURCES)}"
    )
