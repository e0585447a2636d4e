"""Engines chosen by name, held as data: ``local`` (Polars, in process), ``spark``."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from marketlake.errors import ConfigError

if TYPE_CHECKING:
    from marketlake.engines.base import Engine
    from marketlake.settings import Settings


@dataclass(frozen=True)
class EngineEntry:
    """Where an engine class lives and what it is."""

    module: str
    class_name: str
    description: str


ENGINES: dict[str, EngineEntry] = {
    "local": EngineEntry(
        "marketlake.engines.local", "PolarsEngine", "Polars and numpy in this process"
    ),
    "spark": EngineEntry(
        "marketlake.engines.spark.engine",
        "SparkEngine",
        "Apache Spark, local or on a cluster (pip install 'marketlake[spark]', Java 17+)",
    ),
}


def create_engine(name: str, settings: Settings | None = None) -> Engine:
    """The engine called ``name`` (one of :data:`ENGINES`), configured by ``settings``."""
    entry = ENGINES.get(name.strip().lower())
    if entry is None:
        raise ConfigError(f"unknown analytics engine {name!r}; choose one of {', '.join(ENGINES)}")
    engine_class: type[Engine] = getattr(importlib.import_module(entry.module), entry.class_name)
    return engine_class.from_settings(settings)
