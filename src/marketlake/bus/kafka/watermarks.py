"""A partition's first and end offsets on Kafka-protocol brokers, with the end confirmed by
reading: some brokers (Tansu) report the last batch's base offset + 1 as the high watermark."""

from __future__ import annotations

import time
from typing import Any

from marketlake.bus.kafka.driver import KafkaCluster

# The probe wants "no more records" at once, not after a long-polling fetch.
_PROBE_FETCH_WAIT_MS = 10
# A consume call waits for its whole timeout unless it fills up, so the probe polls briefly
# and sees each partition's end (EOF) soon after it comes; a partition whose records came but
# whose EOF did not is taken as read after _PROBE_QUIET_S without any record.
_PROBE_POLL_S = 0.01
_PROBE_QUIET_S = 0.1


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
    quiet_since = time.monotonic()
    while pending and time.monotonic() < deadline:
        batch = probe.consume(num_messages=1000, timeout=_PROBE_POLL_S)
        now = time.monotonic()
        if batch:
            quiet_since = now
        elif pending <= reached and now - quiet_since >= _PROBE_QUIET_S:
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
