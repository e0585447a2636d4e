"""The processing pipeline a ``marketlake stream`` command assembles from its settings, and
the warning of a run that changed nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketlake.cli.stream.context import topic_retention

if TYPE_CHECKING:
    from marketlake.components import Components
    from marketlake.streaming.runtime.pipeline import StreamPipeline
    from marketlake.streaming.runtime.stats import ProcessStats
    from marketlake.streaming.spark.pipeline import SparkStreamPipeline


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
