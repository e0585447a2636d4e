"""How the stream pipeline reads, batches, commits and waits for its bus."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from marketlake.streaming.config import StreamConfig
from marketlake.streaming.runtime.producer import ALERTS_TOPIC, TICKS_TOPIC

if TYPE_CHECKING:
    from marketlake.bus.base import Retention

DEFAULT_GROUP = "stream-processor"


@dataclass
class PipelineOptions:
    """How the pipeline reads, batches and commits."""

    group: str = DEFAULT_GROUP
    topic: str = TICKS_TOPIC
    partitions: int = 4
    alerts_topic: str | None = ALERTS_TOPIC
    ticks_mode: Literal["append", "merge"] = "append"
    max_messages: int = 512
    poll_timeout_s: float = 0.1
    commit_interval_s: float = 1.0
    commit_ticks: int = 250_000
    barrier_s: float = 30.0
    bus_wait_s: float = 600.0  # how long an unreachable bus is waited for, mid-stream
    bus_backoff_s: float = 0.5
    retention: Retention | None = None  # of the ticks and alerts topics
    config: StreamConfig = field(default_factory=StreamConfig)
    status_path: Path | None = None  # where the live status is kept (None: nowhere)
