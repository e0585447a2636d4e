"""The ``[stream]`` settings section: the stream processor, its bus topic and tick sources."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from marketlake.durations import Duration, format_duration
from marketlake.settings.sections import Section


class StreamSimSettings(Section):
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


class StreamReplaySettings(Section):
    """How the replay tick source paces recorded bars."""

    speed: float = Field(default=1.0, ge=0, description="Replay speed (0: as fast as possible)")


class StreamSettings(Section):
    """The stream processor: its topic and group, lateness, windows, alerts and batching."""

    source: str = Field(default="sim", description="Tick source")
    engine: Literal["embedded", "spark"] = Field(
        default="embedded",
        description="Stream processor: embedded (in this process) or spark (Structured Streaming)",
    )
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
        default=250_000, ge=1, description="Ticks that make a sink commit due at the latest"
    )
    max_messages: int = Field(default=512, ge=1, description="Messages per poll at most")
    retention_bytes: int | None = Field(
        default=None,
        ge=1,
        description="Bytes each stream topic keeps at most, spread over its partitions "
        "(unset: no limit)",
    )
    retention: Duration | None = Field(
        default=None, description="How long each stream topic keeps records (unset: no limit)"
    )
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

    @field_validator("commit_interval", "retention")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
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
