"""The settings sections of sources, validation, the S3 lake and the runner."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from marketlake.durations import Duration, format_duration

OnConflict = Literal["keep", "replace", "quarantine"]
ON_CONFLICT_CHOICES: tuple[str, ...] = get_args(OnConflict)


class Section(BaseModel):
    """A frozen settings section that rejects unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class SimSettings(Section):
    """The offline simulator."""

    seed: int = 42


class FileSourceSettings(Section):
    """CSV and Parquet files."""

    path: Path | None = None


class YahooSettings(Section):
    """Yahoo Finance chart API."""

    base_url: str = "https://query2.finance.yahoo.com"
    timeout_s: float = 20.0


class AlphaVantageSettings(Section):
    """Alpha Vantage REST API."""

    base_url: str = "https://www.alphavantage.co"
    api_key: SecretStr | None = None
    requests_per_minute: int = 5
    requests_per_day: int = 25
    timeout_s: float = 20.0
    # auto: TIME_SERIES_DAILY_ADJUSTED, else TIME_SERIES_DAILY once the key is refused it
    daily_function: Literal["auto", "TIME_SERIES_DAILY_ADJUSTED", "TIME_SERIES_DAILY"] = "auto"


class SourcesSettings(Section):
    """Settings of every source adapter."""

    sim: SimSettings = SimSettings()
    files: FileSourceSettings = FileSourceSettings()
    yahoo: YahooSettings = YahooSettings()
    alphavantage: AlphaVantageSettings = AlphaVantageSettings()


class ValidationSettings(Section):
    """Data-quality thresholds."""

    max_daily_jump: float = Field(
        default=0.6,
        description="largest |close/prev_close - 1| not explained by a corporate action",
    )
    max_volume: float = Field(
        default=1e12,
        gt=0,
        description="largest volume of one daily bar; a bar above it is quarantined as "
        "implausible_volume",
    )
    max_source_diff: float = Field(
        default=0.001,
        description="largest relative close difference between two sources' bars of one "
        "session that is not flagged by reconciliation",
    )
    on_conflict: OnConflict = Field(
        default="keep",
        description="a stored bar that another origin contradicts beyond max_source_diff: "
        "keep it, replace it with the incoming bar, or keep it and quarantine the incoming bar",
    )


class S3Settings(Section):
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


class RunnerSettings(Section):
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


class SparkSettings(Section):
    """The Spark engines (``engine = "spark"`` for batch, ``stream.engine = "spark"`` for
    streaming): where they run and how they are configured."""

    master: str = Field(
        default="local[*]",
        description="Spark master URL: local[N], spark://host:7077, yarn, k8s://...",
    )
    app_name: str = Field(default="marketlake", description="Spark application name")
    conf: dict[str, str] = Field(
        default_factory=dict,
        description="spark.* configuration passed to the session as given",
    )

    trigger_interval: Duration = Field(
        default=timedelta(seconds=1),
        description="Time between the Structured Streaming query's micro-batches",
    )
    stream_partitions: int = Field(
        default=4,
        ge=1,
        description="Shuffle partitions of the streaming query (fixed once its checkpoint exists)",
    )
    checkpoint: Path | None = Field(
        default=None,
        description="Folder of the streaming queries' checkpoints "
        "(default <home>/spark/checkpoints)",
    )

    @field_validator("trigger_interval")
    @classmethod
    def _positive_interval(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError(f"must be positive, got {format_duration(value)}")
        return value

    @field_validator("conf")
    @classmethod
    def _spark_keys_only(cls, value: dict[str, str]) -> dict[str, str]:
        stray = sorted(key for key in value if not key.startswith("spark."))
        if stray:
            raise ValueError(f"only spark.* keys are passed to Spark; got {', '.join(stray)}")
        return {key: str(item) for key, item in value.items()}


class ServeSettings(Section):
    """``marketlake serve``: where the API and dashboard listen and the token they require."""

    host: str = Field(
        default="127.0.0.1",
        description="address to listen on; any address but loopback requires a token",
    )
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port (0: any free port)")
    token: SecretStr | None = Field(
        default=None,
        description="bearer token every request must carry (Authorization: Bearer TOKEN)",
    )
