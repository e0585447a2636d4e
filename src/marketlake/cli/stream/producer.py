"""The tick producer a ``marketlake stream`` command assembles: its source, shaped by the
command's options, its record of what it produced, and its progress line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from marketlake.cli.stream.context import topic_retention

if TYPE_CHECKING:
    from marketlake.components import Components
    from marketlake.sources.live import TickSource
    from marketlake.streaming.runtime.marks import ProducedMarks
    from marketlake.streaming.runtime.producer import ProduceStats, TickProducer


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


def produced_line(stats: ProduceStats) -> str:
    """One progress line of the producer."""
    wait = "  (waiting for the bus)" if stats.waiting else ""
    return f"produced {stats.ticks:,} ticks ({stats.rate:,.0f}/s) in {stats.messages:,} msgs{wait}"
