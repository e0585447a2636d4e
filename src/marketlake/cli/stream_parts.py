"""The parts the ``marketlake stream`` commands assemble from their options: settings, the
tick source, the producer, the processing pipeline, stop signals and progress lines."""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from marketlake.bus.base import Retention
    from marketlake.components import Components
    from marketlake.settings import Settings
    from marketlake.sources.live import TickSource
    from marketlake.streaming.runtime.marks import ProducedMarks
    from marketlake.streaming.runtime.pipeline import StreamPipeline
    from marketlake.streaming.runtime.producer import ProduceStats, TickProducer
    from marketlake.streaming.runtime.stats import ProcessStats
    from marketlake.streaming.spark.pipeline import SparkStreamPipeline

PRODUCER_KEYS = ("source", "topic", "partitions")
PROCESSOR_KEYS = (
    "engine",
    "topic",
    "partitions",
    "group",
    "ticks_mode",
    "lateness",
    "sliding_window",
    "sliding_step",
    "ma_windows",
    "alert_pct",
    "commit_interval",
)


def stream_context(params: Mapping[str, Any]) -> Components:
    """The components of the settings a stream command's parameters (``ctx.params``) give:
    its ``--home``, ``--config`` and every option that overrides a setting."""
    from marketlake.arrow_pool import prefer_jemalloc
    from marketlake.cli.stream_options import settings_overrides
    from marketlake.components import Components
    from marketlake.settings import load_settings

    prefer_jemalloc()
    overrides = settings_overrides(params)
    return Components(
        load_settings(config=params.get("config"), home=params.get("home"), **overrides)
    )


def settings_line(settings: Settings, keys: tuple[str, ...]) -> str:
    """The ``[stream]`` settings named by ``keys`` as one ``key=value`` line."""
    stream = settings.stream.model_dump(mode="json")
    values = (stream[key] for key in keys)
    shown = (",".join(v) if isinstance(v, list) else str(v) for v in values)
    return "stream settings: " + " ".join(f"{k}={v}" for k, v in zip(keys, shown, strict=True))


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
    """The options of one invocation that shape the tick source; the rest is in the settings
    (``stream.source``, ``stream.sim``, ``stream.replay``, ``sources.sim.seed``)."""

    rate: float | None
    count: int | None
    path: Path | None
    start: datetime | None

    def open(self, ctx: Components, marks: ProducedMarks) -> TickSource:
        """The tick source of the settings of ``ctx``, shaped by these options; without a
        start, it continues after the ticks ``marks`` says were produced to the topic."""
        from marketlake.sources.registry import TickRequest, create_tick_source

        done = marks.load()
        resume = {} if self.start else {s: (m.ts, m.seq) for s, m in done.items()}
        stream = ctx.settings.stream
        request = TickRequest(
            rate=self.rate,
            count=self.count,
            path=self.path,
            speed=stream.replay.speed,
            start=self.start,
            event_rate=stream.sim.event_rate,
            late_fraction=stream.sim.late_fraction,
            late_by=stream.sim.late_by.total_seconds(),
            resume=resume,
        )
        return create_tick_source(stream.source, ctx.settings, request)


def produced_marks(ctx: Components) -> ProducedMarks:
    """The record of the ticks produced to the settings' topic, kept in the home of ``ctx``."""
    from marketlake.streaming.runtime.marks import ProducedMarks

    return ProducedMarks.of_topic(ctx.settings.home, ctx.settings.stream.topic)


def tick_producer(ctx: Components, marks: ProducedMarks) -> TickProducer:
    """A producer of ticks to the settings' topic on the bus of ``ctx`` that says when it
    waits and records what it delivered in ``marks``."""
    from marketlake.streaming.runtime.producer import TickProducer

    def waiting(stats: ProduceStats) -> None:
        if stats.retries % 10 == 1:
            print(f"bus unreachable: {stats.ticks:,} ticks sent so far wait for it", flush=True)

    stream = ctx.settings.stream
    return TickProducer(
        ctx.bus,
        stream.topic,
        stream.partitions,
        on_wait=waiting,
        retention=topic_retention(ctx),
        marks=marks,
    )


def stream_pipeline(ctx: Components, no_warehouse: bool) -> StreamPipeline | SparkStreamPipeline:
    """The processing pipeline of the ``[stream]`` settings of ``ctx``, from its bus into its
    lake (and warehouse, unless ``no_warehouse``): the embedded processor, or a Spark query
    with ``stream.engine = "spark"``."""
    from marketlake.streaming.config import StreamConfig
    from marketlake.streaming.runtime.pipeline import PipelineOptions, StreamPipeline
    from marketlake.streaming.runtime.status import status_path

    stream = ctx.settings.stream
    options = PipelineOptions(
        group=stream.group,
        topic=stream.topic,
        partitions=stream.partitions,
        alerts_topic=stream.alerts_topic,
        ticks_mode=stream.ticks_mode,
        max_messages=stream.max_messages,
        commit_interval_s=stream.commit_interval.total_seconds(),
        commit_ticks=stream.commit_ticks,
        retention=topic_retention(ctx),
        config=StreamConfig.from_settings(stream, ctx.settings.calendar),
        status_path=status_path(ctx.settings.home, stream.group),
    )
    warehouse = None if no_warehouse else ctx.warehouse
    if stream.engine == "spark":
        from marketlake.streaming.spark.pipeline import SparkStreamPipeline, checkpoint_folder

        settings = ctx.settings
        checkpoint = checkpoint_folder(settings.home, settings.spark, stream.group)
        return SparkStreamPipeline(
            ctx.bus, settings.bus_url, ctx.tables, options, settings.spark, checkpoint, warehouse
        )
    return StreamPipeline(ctx.bus, ctx.tables, options, warehouse)


def topic_retention(ctx: Components) -> Retention | None:
    """The retention of the stream's topics (``stream.retention_bytes``, ``stream.retention``),
    None when neither is set."""
    from marketlake.bus.base import Retention

    stream = ctx.settings.stream
    if stream.retention_bytes is None and stream.retention is None:
        return None
    age = None if stream.retention is None else int(stream.retention.total_seconds() * 1000)
    return Retention(stream.retention_bytes, age)


def produced_line(stats: ProduceStats) -> str:
    """One progress line of the producer."""
    wait = "  (waiting for the bus)" if stats.waiting else ""
    return f"produced {stats.ticks:,} ticks ({stats.rate:,.0f}/s) in {stats.messages:,} msgs{wait}"


def late_note(stats: ProcessStats) -> str | None:
    """A warning when every tick a run received was late or already processed (None
    otherwise): such a run changes no window beyond ``late_retention``."""
    if stats.ticks == 0 or stats.late + stats.duplicates + stats.quarantined < stats.ticks:
        return None
    return (
        f"warning: all {stats.ticks:,} ticks this run received were late ({stats.late:,}, "
        f"behind their symbol's watermark; see late_ticks) or already processed "
        f"({stats.duplicates:,} duplicates); a stream started without --start continues "
        "after the last tick produced instead"
    )
