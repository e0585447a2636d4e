"""``marketlake stream``: live ticks through the bus, the stream processor, lake and warehouse.

``marketlake stream`` runs the producer and the processor in one process; ``stream produce``
and ``stream process`` run them separately, so either can be stopped or killed and restarted
on its own; ``stream compact`` rewrites the streaming tables' small files; ``stream trim``
deletes from the bus what every consumer group has committed.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from marketlake.cli.options import (
    BusOption,
    ConfigOption,
    HomeOption,
    LakeOption,
    QuietOption,
    WarehouseOption,
)
from marketlake.cli.stream.console import line_printer, stop_flag
from marketlake.cli.stream.context import (
    PROCESSOR_KEYS,
    PRODUCER_KEYS,
    settings_line,
    stream_context,
)
from marketlake.cli.stream.options import (
    AlertPct,
    CommitInterval,
    Count,
    Duration,
    EventRate,
    Group,
    LateBy,
    LateFraction,
    Lateness,
    MaWindows,
    MaxMessages,
    NoWarehouse,
    Partitions,
    PathOpt,
    Rate,
    Seed,
    SlidingStep,
    SlidingWindow,
    Source,
    Speed,
    Start,
    StreamEngine,
    Symbols,
    TicksMode,
    Topic,
)
from marketlake.cli.stream.processor import late_note, stream_pipeline
from marketlake.cli.stream.producer import (
    TickOptions,
    produced_line,
    produced_marks,
    tick_producer,
)
from marketlake.durations import FORMS

if TYPE_CHECKING:
    from datetime import datetime

    from marketlake.streaming.runtime.marks import ProducedMarks
    from marketlake.streaming.runtime.producer import ProduceStats
    from marketlake.streaming.runtime.stats import ProcessStats

stream_app = typer.Typer(
    help="Live ticks: source → bus → stream processor → lake and warehouse. Options left "
    "unset take the stream settings: MARKETLAKE_STREAM__* variables, then the stream section "
    f"of the config file, then the defaults. Durations: {FORMS}.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@stream_app.callback()
def stream(
    ctx_typer: typer.Context,
    home: HomeOption = None,
    config: ConfigOption = None,
    bus: BusOption = None,
    lake: LakeOption = None,
    warehouse: WarehouseOption = None,
    source: Source = None,
    symbols: Symbols = None,
    rate: Rate = None,
    count: Count = None,
    duration: Duration = None,
    path: PathOpt = None,
    speed: Speed = None,
    seed: Seed = None,
    start: Start = None,
    event_rate: EventRate = None,
    late_fraction: LateFraction = None,
    late_by: LateBy = None,
    partitions: Partitions = None,
    topic: Topic = None,
    group: Group = None,
    engine: StreamEngine = None,
    lateness: Lateness = None,
    sliding_window: SlidingWindow = None,
    sliding_step: SlidingStep = None,
    ma_windows: MaWindows = None,
    alert_pct: AlertPct = None,
    no_warehouse: NoWarehouse = False,
    ticks_mode: TicksMode = None,
    commit_interval: CommitInterval = None,
    max_messages: MaxMessages = None,
    quiet: QuietOption = False,
) -> None:
    """Produce ticks and process them in one process (until --count/--duration, or Ctrl-C)."""
    if ctx_typer.invoked_subcommand is not None:
        return
    from marketlake.streaming.runtime.runner import stream_in_process

    ctx = stream_context(ctx_typer.params)
    try:
        marks = produced_marks(ctx)
        tick_source = TickOptions(rate, count, path, start).open(ctx, marks)
        producer = tick_producer(ctx, marks)
        pipeline = stream_pipeline(ctx, no_warehouse)

        say = line_printer(quiet)
        say(settings_line(ctx.settings, PRODUCER_KEYS[:1] + PROCESSOR_KEYS))

        def progress(produced: ProduceStats, processed: ProcessStats) -> None:
            say(f"{produced_line(produced)} | {processed.line()}")

        result = stream_in_process(
            tick_source,
            producer,
            pipeline,
            duration_s=duration,
            stop=stop_flag(),
            on_progress=progress,
        )
        if not quiet:
            print(f"done: {produced_line(result.produced)}; {result.processed.line()}")
        _warn_if_nothing_new(result.produced, start, marks)
        _warn_if_late(result.processed)
    finally:
        ctx.close()


@stream_app.command("produce")
def produce(
    ctx_typer: typer.Context,
    home: HomeOption = None,
    config: ConfigOption = None,
    bus: BusOption = None,
    source: Source = None,
    symbols: Symbols = None,
    rate: Rate = None,
    count: Count = None,
    duration: Duration = None,
    path: PathOpt = None,
    speed: Speed = None,
    seed: Seed = None,
    start: Start = None,
    event_rate: EventRate = None,
    late_fraction: LateFraction = None,
    late_by: LateBy = None,
    partitions: Partitions = None,
    topic: Topic = None,
    quiet: QuietOption = False,
) -> None:
    """Send ticks of a live source to the bus (keyed by symbol), nothing lost while it is down."""
    import time

    from marketlake.streaming.runtime.producer import produce_ticks

    ctx = stream_context(ctx_typer.params)
    try:
        marks = produced_marks(ctx)
        tick_source = TickOptions(rate, count, path, start).open(ctx, marks)
        producer = tick_producer(ctx, marks)
        stopped = stop_flag()
        deadline = None if duration is None else time.monotonic() + duration

        def stop() -> bool:
            return stopped() or (deadline is not None and time.monotonic() >= deadline)

        say = line_printer(quiet)
        say(settings_line(ctx.settings, PRODUCER_KEYS))

        with producer:
            stats = produce_ticks(
                producer, tick_source, stop=stop, on_progress=lambda s: say(produced_line(s))
            )
        _warn_if_nothing_new(stats, start, marks)
    finally:
        ctx.close()


@stream_app.command("process")
def process(
    ctx_typer: typer.Context,
    home: HomeOption = None,
    config: ConfigOption = None,
    bus: BusOption = None,
    lake: LakeOption = None,
    warehouse: WarehouseOption = None,
    until_caught_up: Annotated[
        bool,
        typer.Option(
            "--until-caught-up",
            help="Stop once the group has committed every message of every partition of the "
            "topic (with a lake on object storage, waiting for partitions a dead member holds)",
        ),
    ] = False,
    count: Count = None,
    duration: Duration = None,
    partitions: Partitions = None,
    topic: Topic = None,
    group: Group = None,
    engine: StreamEngine = None,
    lateness: Lateness = None,
    sliding_window: SlidingWindow = None,
    sliding_step: SlidingStep = None,
    ma_windows: MaWindows = None,
    alert_pct: AlertPct = None,
    no_warehouse: NoWarehouse = False,
    ticks_mode: TicksMode = None,
    commit_interval: CommitInterval = None,
    max_messages: MaxMessages = None,
    quiet: QuietOption = False,
) -> None:
    """Consume ticks from the bus into the processor, the lake and the warehouse."""
    ctx = stream_context(ctx_typer.params)
    try:
        pipeline = stream_pipeline(ctx, no_warehouse)

        say = line_printer(quiet)
        say(settings_line(ctx.settings, PROCESSOR_KEYS))
        stats = pipeline.run(
            count=count,
            duration_s=duration,
            until_caught_up=until_caught_up,
            stop=stop_flag(),
            on_progress=lambda s: say(s.line()),
        )
        if not quiet:
            print(f"done: {stats.line()}")
        _warn_if_late(stats)
    finally:
        ctx.close()


def _warn_if_nothing_new(stats: ProduceStats, start: datetime | None, marks: ProducedMarks) -> None:
    if stats.ticks == 0 and start is None and marks.marks:
        last = max(mark.ts for mark in marks.marks.values())
        print(
            f"note: no tick after the last one produced to this topic ({last.isoformat()}); "
            "pass --start to send ticks again",
            file=sys.stderr,
        )


def _warn_if_late(stats: ProcessStats) -> None:
    note = late_note(stats)
    if note is not None:
        print(note, file=sys.stderr)


@stream_app.command("compact")
def compact(
    ctx_typer: typer.Context,
    home: HomeOption = None,
    config: ConfigOption = None,
    lake: LakeOption = None,
) -> None:
    """Rewrite the small files of the streaming tables into larger ones."""
    from marketlake.streaming.runtime.sink import compact_stream_tables

    ctx = stream_context(ctx_typer.params)
    for name, metrics in compact_stream_tables(ctx.tables):
        added = metrics.get("numFilesAdded", 0)
        removed = metrics.get("numFilesRemoved", 0)
        sys.stdout.write(f"{name}: {removed} files compacted into {added}\n")


@stream_app.command("trim")
def trim(
    ctx_typer: typer.Context,
    home: HomeOption = None,
    config: ConfigOption = None,
    bus: BusOption = None,
) -> None:
    """Delete from the local bus what every consumer group has committed and what is past the
    topics' retention (on Kafka the broker applies the retention set on the topics)."""
    ctx = stream_context(ctx_typer.params)
    try:
        trimmed = ctx.bus.trim()
        for item in trimmed:
            sys.stdout.write(
                f"{item.topic}/{item.partition}: deleted {item.segments} segments "
                f"({item.records:,} messages) every group has committed\n"
            )
        records = sum(item.records for item in trimmed)
        sys.stdout.write(f"trimmed {records:,} messages every group has committed\n")
    finally:
        ctx.close()
