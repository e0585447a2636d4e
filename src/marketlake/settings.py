"""One frozen, typed settings object.

Precedence: explicit arguments (command-line flags) > environment (``MARKETLAKE_KEY`` and
``MARKETLAKE_SECTION__KEY``) > a TOML config file (``--config``, ``MARKETLAKE_CONFIG`` or
``<home>/marketlake.toml``) > defaults. Secrets are ``SecretStr`` and never printed.
"""

from __future__ import annotations

import os
import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from marketlake.durations import Duration, format_duration
from marketlake.errors import ConfigError, MarketlakeError
from marketlake.redaction import redact_url
from marketlake.symbols import DEFAULT_SYMBOLS, parse_symbols

DEFAULT_HOME = "marketlake-data"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SimSettings(_Section):
    """The offline simulator."""

    seed: int = 42


class FileSourceSettings(_Section):
    """CSV and Parquet files."""

    path: Path | None = None


class YahooSettings(_Section):
    """Yahoo Finance chart API."""

    base_url: str = "https://query2.finance.yahoo.com"
    timeout_s: float = 20.0


class AlphaVantageSettings(_Section):
    """Alpha Vantage REST API."""

    base_url: str = "https://www.alphavantage.co"
    api_key: SecretStr | None = None
    requests_per_minute: int = 5
    requests_per_day: int = 25
    timeout_s: float = 20.0


class SourcesSettings(_Section):
    """Settings of every source adapter."""

    sim: SimSettings = SimSettings()
    files: FileSourceSettings = FileSourceSettings()
    yahoo: YahooSettings = YahooSettings()
    alphavantage: AlphaVantageSettings = AlphaVantageSettings()


class ValidationSettings(_Section):
    """Data-quality thresholds."""

    max_daily_jump: float = Field(
        default=0.6,
        description="largest |close/prev_close - 1| not explained by a corporate action",
    )
    max_source_diff: float = Field(
        default=0.001,
        description="largest relative close difference between two sources' bars of one "
        "session that is not flagged by reconciliation",
    )


class S3Settings(_Section):
    """How to reach an s3:// lake; values left unset fall back to the AWS_* variables."""

    endpoint_url: str | None = None  # e.g. http://127.0.0.1:9000 for MinIO or SeaweedFS
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    allow_http: bool | None = None

    def options(self) -> dict[str, str]:
        """The values that are set, as lake options named like the AWS_* variables."""
        secret, token = self.secret_access_key, self.session_token
        values = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": secret.get_secret_value() if secret else None,
            "AWS_SESSION_TOKEN": token.get_secret_value() if token else None,
            "AWS_ALLOW_HTTP": None if self.allow_http is None else str(self.allow_http).lower(),
        }
        return {key: value for key, value in values.items() if value is not None}


class RunnerSettings(_Section):
    """The built-in pipeline runner."""

    retries: int = 3
    backoff_s: float = 0.5
    bucket_rows: int = Field(
        default=500_000,
        gt=0,
        description="bars per bucket of symbols processed and loaded together (bounds memory)",
    )
    handover_rows: int = Field(
        default=2_000_000,
        ge=0,
        description="rows a stage keeps in memory for the next stage of the same process",
    )


class StreamSimSettings(_Section):
    """How the sim tick source shapes its stream (its seed is ``sources.sim.seed``)."""

    event_rate: float | None = Field(
        default=None,
        gt=0,
        description="Sim ticks per second of event time (unset: --rate, else 100)",
    )
    late_fraction: float = Field(
        default=0.0, ge=0, le=1, description="Share of sim ticks sent late (for testing)"
    )
    late_by: Duration = Field(default=timedelta(seconds=60), description="How late those ticks are")

    @field_validator("late_by")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        return _at_least_zero(value)


class StreamReplaySettings(_Section):
    """How the replay tick source paces recorded bars."""

    speed: float = Field(default=1.0, ge=0, description="Replay speed (0: as fast as possible)")


class StreamSettings(_Section):
    """The stream processor: its topic and group, lateness, windows, alerts and batching."""

    source: str = Field(default="sim", description="Tick source")
    topic: str = Field(default="ticks", min_length=1, description="Topic of the ticks")
    alerts_topic: str = Field(default="alerts", min_length=1, description="Topic of the alerts")
    partitions: int = Field(default=4, ge=1, description="Partitions of the ticks topic")
    group: str = Field(
        default="stream-processor", min_length=1, description="Consumer group of the processor"
    )
    lateness: Duration = Field(
        default=timedelta(seconds=5),
        description="Allowed lateness: a symbol's watermark is its latest event time minus this",
    )
    late_retention: Duration = Field(
        default=timedelta(hours=1),
        description="How far behind the watermark a late tick still corrects its windows",
    )
    sliding_window: Duration = Field(
        default=timedelta(minutes=15), description="Length of the sliding windows"
    )
    sliding_step: Duration = Field(
        default=timedelta(minutes=5),
        description="Step of the sliding windows (equal to the length: tumbling windows)",
    )
    ma_windows: Annotated[tuple[Duration, ...], NoDecode] = Field(
        default=(timedelta(minutes=15), timedelta(hours=1)),
        description="Trailing moving-average windows, comma-separated",
    )
    alert_pct: float = Field(
        default=2.0, gt=0, description="Alert when a window moves more than this many percent"
    )
    ticks_mode: Literal["append", "merge"] = Field(
        default="append",
        description="How ticks land: append (exactly-once by offsets) or merge (by key)",
    )
    commit_interval: Duration = Field(
        default=timedelta(seconds=1), description="Time between sink commits"
    )
    commit_ticks: int = Field(
        default=500_000, ge=1, description="Ticks that make a sink commit due at the latest"
    )
    max_messages: int = Field(default=512, ge=1, description="Messages per poll at most")
    sim: StreamSimSettings = StreamSimSettings()
    replay: StreamReplaySettings = StreamReplaySettings()

    @field_validator("ma_windows", mode="before")
    @classmethod
    def _split_windows(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.replace(",", " ").split() if part]
        return value

    @field_validator("lateness", "late_retention")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        return _at_least_zero(value)

    @field_validator("commit_interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError(f"must be positive, got {format_duration(value)}")
        return value

    @field_validator("sliding_window", "sliding_step", "ma_windows")
    @classmethod
    def _whole_minutes(cls, value: Any) -> Any:
        for span in value if isinstance(value, tuple) else (value,):
            if span <= timedelta(0) or span % timedelta(minutes=1):
                raise ValueError(
                    f"must be a positive whole number of minutes, got {format_duration(span)}"
                )
        return value

    @model_validator(mode="after")
    def _step_within_window(self) -> StreamSettings:
        if self.sliding_step > self.sliding_window:
            raise ValueError(
                f"sliding_step ({format_duration(self.sliding_step)}) must not exceed "
                f"sliding_window ({format_duration(self.sliding_window)})"
            )
        return self


def _at_least_zero(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError(f"must be 0 or more, got {format_duration(value)}")
    return value


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
    warehouse: str | None = None  # duckdb:///path; default <home>/warehouse.duckdb
    calendar: str = "XNYS"
    sources: SourcesSettings = SourcesSettings()
    validation: ValidationSettings = ValidationSettings()
    runner: RunnerSettings = RunnerSettings()
    s3: S3Settings = S3Settings()
    stream: StreamSettings = StreamSettings()

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
        if path is None or not path.exists():
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


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from ``overrides``, env, config and defaults.

    None values in ``overrides``, also inside nested sections (``stream={"lateness": None}``),
    are ignored, so a flag left unset falls back to the environment, the file and the default.
    """
    explicit = _without_none(overrides)
    _CONFIG_OVERRIDE["path"] = config
    try:
        return Settings(**explicit)
    except ValidationError as exc:
        problems = "; ".join(_problem(err["loc"], err["msg"]) for err in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from None
    finally:
        _CONFIG_OVERRIDE["path"] = None


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
