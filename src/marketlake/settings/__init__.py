"""One frozen, typed settings object.

Precedence: explicit arguments (command-line flags) > environment (``MARKETLAKE_KEY`` and
``MARKETLAKE_SECTION__KEY``) > a TOML config file (``--config``, ``MARKETLAKE_CONFIG`` or
``<home>/marketlake.toml``) > defaults. Secrets are ``SecretStr`` and never printed.
"""

from __future__ import annotations

import os
import tomllib
from copy import deepcopy
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    Field,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from marketlake.analytics.indicator_set import DEFAULT_TABLES
from marketlake.errors import ConfigError, MarketlakeError
from marketlake.redaction import redact_url
from marketlake.settings.sections import (
    AlphaVantageSettings,
    FileSourceSettings,
    RunnerSettings,
    S3Settings,
    ServeSettings,
    SimSettings,
    SourcesSettings,
    SparkSettings,
    ValidationSettings,
    YahooSettings,
)
from marketlake.settings.stream import StreamReplaySettings, StreamSettings, StreamSimSettings
from marketlake.symbols import DEFAULT_SYMBOLS, parse_symbols

DEFAULT_HOME = "marketlake-data"

__all__ = [
    "DEFAULT_HOME",
    "AlphaVantageSettings",
    "FileSourceSettings",
    "RunnerSettings",
    "S3Settings",
    "ServeSettings",
    "Settings",
    "SimSettings",
    "SourcesSettings",
    "SparkSettings",
    "StreamReplaySettings",
    "StreamSettings",
    "StreamSimSettings",
    "ValidationSettings",
    "YahooSettings",
    "config_path",
    "load_settings",
    "masked",
]


class Settings(BaseSettings):
    """The effective configuration of marketlake."""

    model_config = SettingsConfigDict(
        env_prefix="MARKETLAKE_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    home: Path = Path(DEFAULT_HOME)
    source: str = "sim"
    symbols: Annotated[tuple[str, ...], NoDecode] = DEFAULT_SYMBOLS
    start: date | None = None
    end: date | None = None
    bus: str = "local"  # local | local:///path | memory://name | kafka://host:port
    lake: str | None = None  # file:///path | s3://bucket/prefix; default <home>/lake
    engine: str = "local"  # a name of marketlake.engines.registry.ENGINES
    warehouse: str | None = None  # duckdb:///path | postgresql://… | snowflake://…
    calendar: str = "XNYS"
    sources: SourcesSettings = SourcesSettings()
    validation: ValidationSettings = ValidationSettings()
    runner: RunnerSettings = RunnerSettings()
    s3: S3Settings = S3Settings()
    spark: SparkSettings = SparkSettings()
    stream: StreamSettings = StreamSettings()
    indicators: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {name: dict(deepcopy(e)) for name, e in DEFAULT_TABLES.items()},
        description="indicators_1d's columns: name = {fn = TA-Lib function, parameters, "
        "outputs = {output = column}}",
    )
    serve: ServeSettings = ServeSettings()

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [s for s in value.replace(",", " ").split() if s]
        try:
            return tuple(parse_symbols(value))
        except MarketlakeError as exc:
            raise ValueError(str(exc)) from None

    @property
    def lake_url(self) -> str:
        """The lake root URL (``file://`` or ``s3://``)."""
        if self.lake:
            return self.lake
        return (self.home / "lake").resolve().as_uri()

    def lake_options(self) -> dict[str, str]:
        """Options of an s3:// lake from the ``[s3]`` section; ``{}`` for a lake on disk."""
        return self.s3.options() if self.lake_url.startswith("s3://") else {}

    @property
    def warehouse_url(self) -> str:
        """The warehouse URL (``duckdb://`` path by default)."""
        if self.warehouse:
            return self.warehouse
        return f"duckdb://{(self.home / 'warehouse.duckdb').resolve()}"

    @property
    def bus_url(self) -> str:
        """The bus URL; ``local`` means the durable log under ``<home>/bus``."""
        if self.bus == "local":
            return f"local://{(self.home / 'bus').resolve()}"
        return self.bus

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls, init_settings))


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML config file named by ``config``/``MARKETLAKE_CONFIG`` or under home."""

    def __init__(
        self, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        self._init = init_settings

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = config_path(self._init())
        if path is None:
            return {}
        if not path.exists():
            if config_named():
                raise ConfigError(
                    f"config file {path} does not exist: pass an existing TOML file to "
                    "--config (or MARKETLAKE_CONFIG), or leave it unset for "
                    "<home>/marketlake.toml"
                )
            return {}
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        return data.get("marketlake", data)


_CONFIG_OVERRIDE: dict[str, Path | None] = {"path": None}


def config_path(init: dict[str, Any] | None = None) -> Path | None:
    """The config file in effect: explicit, ``MARKETLAKE_CONFIG``, or ``<home>/marketlake.toml``."""
    if _CONFIG_OVERRIDE["path"] is not None:
        return _CONFIG_OVERRIDE["path"]
    if os.environ.get("MARKETLAKE_CONFIG"):
        return Path(os.environ["MARKETLAKE_CONFIG"])
    home = (init or {}).get("home") or os.environ.get("MARKETLAKE_HOME") or DEFAULT_HOME
    return Path(home) / "marketlake.toml"


def config_named() -> bool:
    """True when the config file is named explicitly (``--config`` or ``MARKETLAKE_CONFIG``)."""
    return _CONFIG_OVERRIDE["path"] is not None or bool(os.environ.get("MARKETLAKE_CONFIG"))


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from ``overrides``, env, config and defaults.

    None values in ``overrides``, also inside nested sections (``stream={"lateness": None}``),
    are ignored, so a flag left unset falls back to the environment, the file and the default.
    """
    explicit = _without_none(overrides)
    _CONFIG_OVERRIDE["path"] = config
    try:
        settings = Settings(**explicit)
    except ValidationError as exc:
        problems = "; ".join(_problem(err["loc"], err["msg"]) for err in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from None
    finally:
        _CONFIG_OVERRIDE["path"] = None
    from marketlake.analytics.indicator_config import configured_indicators

    configured_indicators(settings.indicators)  # a bad [indicators] entry fails before any run
    if settings.home.exists() and not settings.home.is_dir():
        raise ConfigError(
            f"home {settings.home} is a file, not a folder: point --home (or MARKETLAKE_HOME) "
            "at a folder; a missing one is created"
        )
    return settings


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    kept = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _without_none(value)
        if value is not None and value != {}:
            kept[key] = value
    return kept


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    where = ".".join(str(p) for p in loc if not isinstance(p, int)) or "settings"
    return f"{where}: {message.removeprefix('Value error, ')}"


def masked(settings: Settings) -> dict[str, Any]:
    """The settings as plain data with secrets masked, for display."""
    data: dict[str, Any] = settings.model_dump(mode="json")
    data["lake_url"] = settings.lake_url
    data["warehouse_url"] = redact_url(settings.warehouse_url)
    data["bus_url"] = redact_url(settings.bus_url)
    data["bus"] = redact_url(settings.bus)
    if settings.warehouse:
        data["warehouse"] = redact_url(settings.warehouse)
    return data
