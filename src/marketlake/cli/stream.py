"""``marketlake stream``: live ticks through the bus, the stream processor, lake and warehouse.

``marketlake stream`` runs the producer and the processor in one process; ``stream produce``
and ``stream process`` run them separately, so either can be stopped or killed and restarted
on its own; ``stream compact`` rewrites the streaming tables' small files.
"""

from __future__ import annotations

import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from marketlake.pipeline.context import RunContext
    from marketlake.sources.live import TickSource
    from marketlake.streaming.pipeline import StreamPipeline
    from marketlake.streaming.producer import ProduceStats, TickProducer
    from marketlake.streaming.stats import ProcessStats

from marketlake.cli.stream_options import (
    BusOpt,
    CommitInterval,
    Config,
    Count,
    Duration,
    EventRate,
    Group,
    Home,
    LakeOpt,
    LateBy,
    LateFraction,
    Lateness,
    MaxMessages,
    NoWarehouse,
    Partitions,
    PathOpt,
    Quiet,
    Rate,
    Seed,
    Source,
    Speed,
    Start,
    Symbols,
    TicksMode,
    Topic,
    WarehouseOpt,
)

stream_app = typer.Typer(
    help="Live ticks: source → bus → stream processor → lake and warehouse.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def _context(home: Path | None, config: Path | None, **overrides: Any) -> RunContext:
    from marketlake.pipeline.context import RunContext
    from marketlake.settings import load_settings

    return RunContext(load_settings(config=config, home=home, **overrides))


def _stop_flag() -> Any:
    """A callable that turns true after SIGINT or SIGTERM (for a clean stop and commit)."""
    stopped: list[int] = []

    def handle(signum: int, _frame: Any) -> None:
        stopped.append(signum)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return lambda: bool(stopped)


def _source(
    ctx: RunContext,
    source: str,
    rate: float | None,
    count: int | None,
    path: Path | None,
    speed: float,
    seed: int | None,
    start: datetime | None,
    sim: dict[str, Any] | None = None,
) -> TickSource:
    from datetime import UTC

    from marketlake.errors import ConfigError

    if source == "sim":
        from marketlake.sources.live import SimTickSource

        return SimTickSource(
            ctx.settings.symbols,
            rate_per_s=rate,
            seed=ctx.settings.sources.sim.seed if seed is None else seed,
            start=start if start is None or start.tzinfo else start.replace(tzinfo=UTC),
            count=count,
            calendar=ctx.settings.calendar,
            **(sim or {}),
        )
    if source == "replay":
        from marketlake.sources.replay import ReplaySource

        if path is None:
            raise ConfigError("the replay source needs --path FILE (1-minute bars, CSV)")
        symbols = ctx.settings.symbols if ctx.settings.symbols else None
        explicit = symbols[0] if symbols and len(symbols) == 1 else None
        return ReplaySource(path, speed, symbol=explicit)
    raise ConfigError(f"unknown tick source {source!r}: valid sources are sim, replay")


def _sim(event_rate: float | None, late_fraction: float, late_by: float) -> dict[str, Any]:
    return {"event_rate_per_s": event_rate, "late_fraction": late_fraction, "late_by_s": late_by}


def _producer(ctx: RunContext, topic: str, partitions: int) -> TickProducer:
    from marketlake.streaming.producer import TickProducer

    def waiting(stats: ProduceStats) -> None:
        if stats.retries % 10 == 1:
            print(f"bus unreachable: {stats.ticks:,} ticks sent so far wait for it", flush=True)

    return TickProducer(ctx.bus, topic, partitions, on_wait=waiting)


def _pipeline(
    ctx: RunContext,
    topic: str,
    partitions: int,
    group: str,
    lateness: float,
    no_warehouse: bool,
    ticks_mode: str,
    commit_interval: float,
) -> StreamPipeline:
    from datetime import timedelta

    from marketlake.errors import ConfigError
    from marketlake.streaming.config import StreamConfig
    from marketlake.streaming.pipeline import PipelineOptions, StreamPipeline

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


def _produced_line(stats: ProduceStats) -> str:
    wait = "  (waiting for the bus)" if stats.waiting else ""
    return f"produced {stats.ticks:,} ticks ({stats.rate:,.0f}/s) in {stats.messages:,} msgs{wait}"


@stream_app.callback()
def stream(
    ctx_typer: typer.Context,
    home: Home = None,
    config: Config = None,
    bus: BusOpt = None,
    lake: LakeOpt = None,
    warehouse: WarehouseOpt = None,
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
    quiet: Quiet = False,
) -> None:
    """Produce ticks and process them in one process (until --count/--duration, or Ctrl-C)."""
    if ctx_typer.invoked_subcommand is not None:
        return
    from marketlake.streaming.runner import stream_in_process

    ctx = _context(home, config, bus=bus, lake=lake, warehouse=warehouse, symbols=symbols)
    try:
        tick_source = _source(
            ctx,
            source,
            rate,
            count,
            path,
            speed,
            seed,
            start,
            _sim(event_rate, late_fraction, late_by),
        )
        producer = _producer(ctx, topic, partitions)
        pipeline = _pipeline(
            ctx, topic, partitions, group, lateness, no_warehouse, ticks_mode, commit_interval
        )

        def progress(produced: ProduceStats, processed: ProcessStats) -> None:
            if not quiet:
                print(f"{_produced_line(produced)} | {processed.line()}", flush=True)

        result = stream_in_process(
            tick_source,
            producer,
            pipeline,
            duration_s=duration,
            stop=_stop_flag(),
            on_progress=progress,
        )
        if not quiet:
            print(f"done: {_produced_line(result.produced)}; {result.processed.line()}")
    finally:
        ctx.close()


@stream_app.command("produce")
def produce(
    home: Home = None,
    config: Config = None,
    bus: BusOpt = None,
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
    quiet: Quiet = False,
) -> None:
    """Send ticks of a live source to the bus (keyed by symbol), nothing lost while it is down."""
    import time

    from marketlake.streaming.producer import produce_ticks

    ctx = _context(home, config, bus=bus, symbols=symbols)
    try:
        tick_source = _source(
            ctx,
            source,
            rate,
            count,
            path,
            speed,
            seed,
            start,
            _sim(event_rate, late_fraction, late_by),
        )
        producer = _producer(ctx, topic, partitions)
        stopped = _stop_flag()
        deadline = None if duration is None else time.monotonic() + duration

        def stop() -> bool:
            return stopped() or (deadline is not None and time.monotonic() >= deadline)

        def progress(stats: ProduceStats) -> None:
            if not quiet:
                print(_produced_line(stats), flush=True)

        with producer:
            produce_ticks(producer, tick_source, stop=stop, on_progress=progress)
    finally:
        ctx.close()


@stream_app.command("process")
def process(
    home: Home = None,
    config: Config = None,
    bus: BusOpt = None,
    lake: LakeOpt = None,
    warehouse: WarehouseOpt = None,
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
    quiet: Quiet = False,
) -> None:
    """Consume ticks from the bus into the processor, the lake and the warehouse."""
    ctx = _context(home, config, bus=bus, lake=lake, warehouse=warehouse)
    try:
        pipeline = _pipeline(
            ctx, topic, partitions, group, lateness, no_warehouse, ticks_mode, commit_interval
        )
        pipeline.options.max_messages = max_messages

        def progress(stats: ProcessStats) -> None:
            if not quiet:
                print(stats.line(), flush=True)

        stats = pipeline.run(
            count=count,
            duration_s=duration,
            until_caught_up=until_caught_up,
            stop=_stop_flag(),
            on_progress=progress,
        )
        if not quiet:
            print(f"done: {stats.line()}")
    finally:
        ctx.close()


@stream_app.command("compact")
def compact(home: Home = None, config: Config = None, lake: LakeOpt = None) -> None:
    """Rewrite the small files of the streaming tables into larger ones."""
    from marketlake.streaming.sink import compact_stream_tables

    ctx = _context(home, config, lake=lake)
    for name, metrics in compact_stream_tables(ctx.tables):
        added = metrics.get("numFilesAdded", 0)
        removed = metrics.get("numFilesRemoved", 0)
        sys.stdout.write(f"{name}: {removed} files compacted into {added}\n")
