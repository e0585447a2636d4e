"""The parts the ``marketlake stream`` commands assemble from their options: settings, the
tick source, the producer, the processing pipeline, stop signals and progress lines."""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from marketlake.components import Components
    from marketlake.sources.live import TickSource
    from marketlake.streaming.runtime.pipeline import StreamPipeline
    from marketlake.streaming.runtime.producer import ProduceStats, TickProducer


def stream_context(home: Path | None, config: Path | None, **overrides: Any) -> Components:
    """The components of settings loaded from ``home``, ``config`` and the CLI overrides."""
    from marketlake.components import Components
    from marketlake.settings import load_settings

    return Components(load_settings(config=config, home=home, **overrides))


def stop_flag() -> Callable[[], bool]:
    """A callable that turns true after SIGINT or SIGTERM (for a clean stop and commit)."""
    stopped: list[int] = []

    def handle(signum: int, _frame: Any) -> None:
        stopped.append(signum)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return lambda: bool(stopped)


def line_printer(quiet: bool) -> Callable[[str], None]:
    """A function printing progress lines at once, or nothing when ``quiet``."""

    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    return say


@dataclass(frozen=True)
class TickOptions:
    """The options that choose and shape the tick source (sim or replay)."""

    source: str
    rate: float | None
    count: int | None
    path: Path | None
    speed: float
    seed: int | None
    start: datetime | None
    event_rate: float | None
    late_fraction: float
    late_by: float

    def open(self, ctx: Components) -> TickSource:
        """The tick source these options describe, for the symbols of ``ctx``."""
        from marketlake.sources.registry import TickRequest, create_tick_source

        request = TickRequest(
            rate=self.rate,
            count=self.count,
            path=self.path,
            speed=self.speed,
            seed=self.seed,
            start=self.start,
            event_rate=self.event_rate,
            late_fraction=self.late_fraction,
            late_by=self.late_by,
        )
        return create_tick_source(self.source, ctx.settings, request)


def tick_producer(ctx: Components, topic: str, partitions: int) -> TickProducer:
    """A producer of ticks to ``topic`` on the bus of ``ctx`` that says when it waits."""
    from marketlake.streaming.runtime.producer import TickProducer

    def waiting(stats: ProduceStats) -> None:
        if stats.retries % 10 == 1:
            print(f"bus unreachable: {stats.ticks:,} ticks sent so far wait for it", flush=True)

    return TickProducer(ctx.bus, topic, partitions, on_wait=waiting)


def stream_pipeline(
    ctx: Components,
    topic: str,
    partitions: int,
    group: str,
    lateness: float,
    no_warehouse: bool,
    ticks_mode: str,
    commit_interval: float,
) -> StreamPipeline:
    """The processing pipeline from the bus of ``ctx`` into its lake (and warehouse)."""
    from datetime import timedelta

    from marketlake.errors import ConfigError
    from marketlake.streaming.config import StreamConfig
    from marketlake.streaming.runtime.pipeline import PipelineOptions, StreamPipeline

    if ticks_mode not in ("append", "merge"):
        raise ConfigError(f"--ticks-mode must be append or merge, got {ticks_mode!r}")
    options = PipelineOptions(
        group=group,
        topic=topic,
        partitions=partitions,
        ticks_mode="merge" if ticks_mode == "merge" else "append",
        commit_interval_s=commit_interval,
        config=StreamConfig(
            allowed_lateness=timedelta(seconds=lateness), calendar=ctx.settings.calendar
        ),
    )
    warehouse = None if no_warehouse else ctx.warehouse
    return StreamPipeline(ctx.bus, ctx.tables, options, warehouse)


def produced_line(stats: ProduceStats) -> str:
    """One progress line of the producer."""
    wait = "  (waiting for the bus)" if stats.waiting else ""
    return f"produced {stats.ticks:,} ticks ({stats.rate:,.0f}/s) in {stats.messages:,} msgs{wait}"
