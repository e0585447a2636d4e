"""``marketlake stream``: live ticks through the bus, the stream processor, lake and warehouse.

``marketlake stream`` runs the producer and the processor in one process; ``stream produce``
and ``stream process`` run them separately, so either can be stopped or killed and restarted
on its own; ``stream compact`` rewrites the streaming tables' small files.
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
from marketlake.cli.stream_options import (
    CommitInterval,
    Count,
    Duration,
    EventRate,
    Group,
    LateBy,
    LateFraction,
    Lateness,
    MaxMessages,
    NoWarehouse,
    Partitions,
    PathOpt,
    Rate,
    Seed,
    Source,
    Speed,
    Start,
    Symbols,
    TicksMode,
    Topic,
)
from marketlake.cli.stream_parts import (
    TickOptions,
    line_printer,
    produced_line,
    stop_flag,
    stream_context,
    stream_pipeline,
    tick_producer,
)

if TYPE_CHECKING:
    from marketlake.streaming.runtime.producer import ProduceStats
    from marketlake.streaming.runtime.stats import ProcessStats

stream_app = typer.Typer(
    help="Live ticks: source → bus → stream processor → lake and warehouse.",
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
    source: Source = "sim",
    symbols: Symbols = None,
    rate: Rate = None,
    count: Count = None,
    duration: Duration = None,
    path: PathOpt = None,
    speed: Speed = 1.0,
    seed: Seed = None,
    start: Start = None,
    event_rate: EventRate = None,
    late_fraction: LateFraction = 0.0,
    late_by: LateBy = 60.0,
    partitions: Partitions = 4,
    topic: Topic = "ticks",
    group: Group = "stream-processor",
    lateness: Lateness = 5.0,
    no_warehouse: NoWarehouse = False,
    ticks_mode: TicksMode = "append",
    commit_interval: CommitInterval = 1.0,
    quiet: QuietOption = False,
) -> None:
    """Produce ticks and process them in one process (until --count/--duration, or Ctrl-C)."""
    if ctx_typer.invoked_subcommand is not None:
        return
    from marketlake.streaming.runtime.runner import stream_in_process

    ctx = stream_context(home, config, bus=bus, lake=lake, warehouse=warehouse, symbols=symbols)
    try:
        tick_source = TickOptions(
            source, rate, count, path, speed, seed, start, event_rate, late_fraction, late_by
        ).open(ctx)
        producer = tick_producer(ctx, topic, partitions)
        pipeline = stream_pipeline(
            ctx, topic, partitions, group, lateness, no_warehouse, ticks_mode, commit_interval
        )

        say = line_printer(quiet)

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
    finally:
        ctx.close()


@stream_app.command("produce")
def produce(
    home: HomeOption = None,
    config: ConfigOption = None,
    bus: BusOption = None,
    source: Source = "sim",
    symbols: Symbols = None,
    rate: Rate = None,
    count: Count = None,
    duration: Duration = None,
    path: PathOpt = None,
    speed: Speed = 1.0,
    seed: Seed = None,
    start: Start = None,
    event_rate: EventRate = None,
    late_fraction: LateFraction = 0.0,
    late_by: LateBy = 60.0,
    partitions: Partitions = 4,
    topic: Topic = "ticks",
    quiet: QuietOption = False,
) -> None:
    """Send ticks of a live source to the bus (keyed by symbol), nothing lost while it is down."""
    import time

    from marketlake.streaming.runtime.producer import produce_ticks

    ctx = stream_context(home, config, bus=bus, symbols=symbols)
    try:
        tick_source = TickOptions(
            source, rate, count, path, speed, seed, start, event_rate, late_fraction, late_by
        ).open(ctx)
        producer = tick_producer(ctx, topic, partitions)
        stopped = stop_flag()
        deadline = None if duration is None else time.monotonic() + duration

        def stop() -> bool:
            return stopped() or (deadline is not None and time.monotonic() >= deadline)

        say = line_printer(quiet)

        with producer:
            produce_ticks(
                producer, tick_source, stop=stop, on_progress=lambda s: say(produced_line(s))
            )
    finally:
        ctx.close()


@stream_app.command("process")
def process(
    home: HomeOption = None,
    config: ConfigOption = None,
    bus: BusOption = None,
    lake: LakeOption = None,
    warehouse: WarehouseOption = None,
    until_caught_up: Annotated[
        bool, typer.Option("--until-caught-up", help="Stop once no message is left (lag 0)")
    ] = False,
    count: Count = None,
    duration: Duration = None,
    partitions: Partitions = 4,
    topic: Topic = "ticks",
    group: Group = "stream-processor",
    lateness: Lateness = 5.0,
    no_warehouse: NoWarehouse = False,
    ticks_mode: TicksMode = "append",
    commit_interval: CommitInterval = 1.0,
    max_messages: MaxMessages = 512,
    quiet: QuietOption = False,
) -> None:
    """Consume ticks from the bus into the processor, the lake and the warehouse."""
    ctx = stream_context(home, config, bus=bus, lake=lake, warehouse=warehouse)
    try:
        pipeline = stream_pipeline(
            ctx, topic, partitions, group, lateness, no_warehouse, ticks_mode, commit_interval
        )
        pipeline.options.max_messages = max_messages

        say = line_printer(quiet)
        stats = pipeline.run(
            count=count,
            duration_s=duration,
            until_caught_up=until_caught_up,
            stop=stop_flag(),
            on_progress=lambda s: say(s.line()),
        )
        if not quiet:
            print(f"done: {stats.line()}")
    finally:
        ctx.close()


@stream_app.command("compact")
def compact(home: HomeOption = None, config: ConfigOption = None, lake: LakeOption = None) -> None:
    """Rewrite the small files of the streaming tables into larger ones."""
    from marketlake.streaming.runtime.sink import compact_stream_tables

    ctx = stream_context(home, config, lake=lake)
    for name, metrics in compact_stream_tables(ctx.tables):
        added = metrics.get("numFilesAdded", 0)
        removed = metrics.get("numFilesRemoved", 0)
        sys.stdout.write(f"{name}: {removed} files compacted into {added}\n")
