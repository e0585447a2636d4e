"""A partition's first and end offsets on Kafka-protocol brokers, with the end confirmed by
reading: some brokers (Tansu) report the last batch's base offset + 1 as the high watermark."""

from __future__ import annotations

import time
from typing import Any

from marketlake.bus.kafka.driver import KafkaCluster

# The probe wants "no more records" at once, not after a long-polling fetch.
_PROBE_FETCH_WAIT_MS = 10


def watermark_probe(cluster: KafkaCluster) -> Any:
    """A client for :func:`confirmed_watermarks` (in no group; it never commits)."""
    return cluster.driver.Consumer(
        {
            **cluster.config,
            "group.id": "marketlake-end-offsets",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": _PROBE_FETCH_WAIT_MS,
        }
    )


def confirmed_watermarks(
    cluster: KafkaCluster, probe: Any, pairs: list[tuple[str, int]]
) -> dict[tuple[str, int], tuple[int, int]]:
    """``(low, end)`` per ``(topic, partition)`` of ``pairs``: the watermarks, with the end
    confirmed by reading the records from the high watermark - 1 on."""
    driver = cluster.driver
    tp = driver.TopicPartition
    ends: dict[tuple[str, int], tuple[int, int]] = {}
    for topic, partition in pairs:
        ends[(topic, partition)] = probe.get_watermark_offsets(
            tp(topic, partition), timeout=10, cached=False
        )
    pending = {pair for pair, (low, high) in ends.items() if high > low}
    if not pending:
        return ends
    probe.assign([tp(t, p, ends[(t, p)][1] - 1) for t, p in sorted(pending)])
    reached: set[tuple[str, int]] = set()
    deadline = time.monotonic() + 10
    while pending and time.monotonic() < deadline:
        batch = probe.consume(num_messages=1000, timeout=0.1)
        if not batch and pending <= reached:
            break
        for item in batch:
            pair = (item.topic(), item.partition())
            error = item.error()
            if error is None:
                low, end = ends[pair]
                ends[pair] = (low, max(end, item.offset() + 1))
                reached.add(pair)
            elif error.code() == driver.KafkaError._PARTITION_EOF:
                pending.discard(pair)
            else:
                raise cluster.error(error, "reading end offsets")
    probe.unassign()
    return ends
