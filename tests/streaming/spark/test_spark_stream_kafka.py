"""``marketlake stream --engine spark`` over a real Kafka-protocol broker (Tansu): the producer
and the Spark query in one process, the query reading Kafka through the Python data source."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketlake.cli.stream.context import stream_context
from marketlake.cli.stream.processor import stream_pipeline
from marketlake.cli.stream.producer import TickOptions, produced_marks, tick_producer
from marketlake.streaming.runtime.runner import stream_in_process
from services.tansu import tansu_url
from streaming.runtime.stream_checks import (
    START,
    SYMBOLS,
    check_outputs,
    frame,
    lake,
    sim_ticks,
    tick_keys,
)

__all__ = ["tansu_url"]

pytestmark = pytest.mark.usefixtures("spark_session")


def test_spark_stream_over_kafka_lands_every_tick_once(tansu_url: str, tmp_path: Path) -> None:
    count = 1_500
    ctx = stream_context(
        {
            "home": tmp_path / "home",
            "engine": "spark",
            "bus": f"{tansu_url}?partitions=2",
            "topic": "spark_ticks",
            "partitions": 2,
            "group": "spark-kafka",
            "symbols": ",".join(SYMBOLS),
            "seed": 7,
            "event_rate": 4,
        }
    )
    try:
        marks = produced_marks(ctx)
        source = TickOptions(rate=20_000, count=count, path=None, start=START).open(ctx, marks)
        run = stream_in_process(
            source, tick_producer(ctx, marks), stream_pipeline(ctx, no_warehouse=True)
        )
        assert run.produced.ticks == count
        assert run.processed.ticks == count
        with ctx.bus.consumer("spark-kafka", ["spark_ticks"]) as consumer:
            assert consumer.lag() == 0  # the query committed what it read for its group
    finally:
        ctx.close()

    expected = sim_ticks(count, 4)
    tables = lake(tmp_path / "home")
    assert tick_keys(tables.read("curated/ticks")) == tick_keys(expected)
    check_outputs(
        frame(tables.read("curated/bars_1m")),
        frame(tables.read("analytics/stream_windows")),
        expected,
    )
