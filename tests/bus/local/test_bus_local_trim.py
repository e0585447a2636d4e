"""The local log's per-topic retention and trimming what every group has committed."""

from __future__ import annotations

from pathlib import Path

from bus_contract import drain

from marketlake.bus.base import Retention
from marketlake.bus.local.bus import LocalBus


def _send(bus: LocalBus, topic: str, count: int, size: int, flush_every: int = 10) -> None:
    with bus.producer() as producer:
        for i in range(count):
            producer.send(topic, "K", f"{i:08d}".encode().ljust(size, b"."))
            if i % flush_every == flush_every - 1:
                producer.flush()


def _topic_bytes(bus: LocalBus, topic: str) -> int:
    return sum(path.stat().st_size for path in bus.topic_folder(topic).glob("*/*.log"))


def test_topic_retention_keeps_the_topic_within_its_size(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path / "bus")
    bus.create_topic("capped", 2, Retention(max_bytes=200_000))
    bus.create_topic("free", 2)
    _send(bus, "capped", 2_000, 1_000)
    _send(bus, "free", 2_000, 1_000)
    # each partition keeps its 100 kB share plus at most the segment being written (64 kB)
    # and one flushed batch (10 kB)
    assert _topic_bytes(bus, "capped") <= 200_000 + 2 * (64 * 1024 + 10 * 1_050)
    assert _topic_bytes(bus, "free") > 2_000 * 1_000

    reopened = LocalBus(tmp_path / "bus")  # the retention is the topic's, stored with it
    assert reopened.layout.retention("capped") == Retention(max_bytes=200_000)
    with reopened.consumer("late", ["capped"]) as consumer:
        kept = []
        while batch := consumer.poll(1_000, timeout_s=0.1):
            kept += batch
    offsets = [m.offset for m in kept]  # the oldest records went, the newest are all there
    assert offsets == list(range(offsets[0], 2_000)) and offsets[0] > 0
    assert kept[-1].value.startswith(b"00001999")


def test_trim_deletes_only_what_every_group_has_committed(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path / "bus", segment_bytes=4096)
    bus.create_topic("t", 1)
    _send(bus, "t", 1_000, 100)
    with bus.consumer("fast", ["t"]) as fast:
        assert len(drain(fast, 1_000)) == 1_000
        fast.commit()
    with bus.consumer("slow", ["t"]) as slow:
        assert len(drain(slow, 300, batch=300)) == 300
        slow.commit()
    before = _topic_bytes(bus, "t")

    trimmed = bus.trim()
    assert [(t.topic, t.partition) for t in trimmed] == [("t", 0)]
    assert 0 < trimmed[0].records <= 300
    assert _topic_bytes(bus, "t") < before
    with bus.consumer("slow", ["t"]) as slow:  # nothing the slow group still needs is gone
        rest = drain(slow, 700)
        assert [m.offset for m in rest] == list(range(300, 1_000))
        assert slow.skipped == 0
        slow.commit()

    trimmed = bus.trim()
    assert sum(t.records for t in trimmed) >= 700 - 4096 // 100
    with bus.consumer("fast", ["t"]) as fast:
        assert fast.lag() == 0
