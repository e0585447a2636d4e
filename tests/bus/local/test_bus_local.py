"""The local log: the bus contract, partitions, torn tails, corruption, segments, retention."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bus_contract import BusContract, GroupSplitContract, drain, send_all

from marketlake.bus.base import Bus, partition_for
from marketlake.bus.local.bus import LocalBus
from marketlake.bus.local.records import CorruptLogError, encode_record
from marketlake.errors import ConfigError


class TestLocalBus(BusContract, GroupSplitContract):
    @pytest.fixture
    def bus(self, tmp_path: Path) -> Iterator[Bus]:
        with LocalBus(tmp_path / "bus", segment_bytes=4096) as bus:
            yield bus


def segments(bus: LocalBus, topic: str, partition: int = 0) -> list[Path]:
    """The segment files of one partition, oldest first."""
    return sorted(bus.partition_folder(topic, partition).glob("*.log"))


def values_of(bus: LocalBus, group: str, topic: str) -> list[bytes]:
    """Every value now readable in ``topic`` by a fresh consumer of ``group``."""
    out: list[bytes] = []
    with bus.consumer(group, [topic]) as consumer:
        while batch := consumer.poll(1000, timeout_s=0.1):
            out += [m.value for m in batch]
    return out


def test_keys_map_to_partition_for(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path, partitions=5)
    keys = [f"SYM{i}" for i in range(20)]
    send_all(bus, "t", [(key, b"x") for key in keys])
    with bus.consumer("g", ["t"]) as consumer:
        got = drain(consumer, 20)
    assert {m.key: m.partition for m in got} == {k: partition_for(k, 5) for k in keys}


def test_partition_count_is_stored_with_the_topic(tmp_path: Path) -> None:
    LocalBus(tmp_path, partitions=3).create_topic("t")
    other = LocalBus(tmp_path, partitions=8)
    other.create_topic("t")
    assert other.partition_count("t") == 3
    assert json.loads((tmp_path / "topics" / "t" / "topic.json").read_text()) == {"partitions": 3}


@pytest.mark.parametrize("name", ["", "a/b", "..", ".", "sp ace", "x" * 250, "ü"])
def test_invalid_topic_names_are_rejected(tmp_path: Path, name: str) -> None:
    bus = LocalBus(tmp_path)
    with pytest.raises(ConfigError, match="letters, digits"):
        bus.create_topic(name)
    with pytest.raises(ConfigError, match="invalid group name"):
        bus.consumer(name or "/", ["ok"])


def test_a_torn_tail_is_invisible_and_cut_by_the_next_producer(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path)
    bus.create_topic("t", 1)
    send_all(bus, "t", [("K", f"{i}".encode()) for i in range(10)])
    [segment] = segments(bus, "t")
    complete = segment.stat().st_size
    torn = encode_record(1, b"K", b"", b"never finished")
    with segment.open("ab") as file:
        file.write(torn[: len(torn) - 3])
    assert values_of(bus, "a", "t") == [f"{i}".encode() for i in range(10)]

    send_all(bus, "t", [("K", b"after")])
    assert segment.stat().st_size == complete + len(encode_record(1, b"K", b"", b"after"))
    assert values_of(bus, "b", "t") == [f"{i}".encode() for i in range(10)] + [b"after"]


def test_a_tail_record_with_a_bad_crc_is_cut(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path)
    bus.create_topic("t", 1)
    send_all(bus, "t", [("K", b"good")])
    [segment] = segments(bus, "t")
    bad = bytearray(encode_record(1, b"K", b"", b"flipped"))
    bad[-1] ^= 0xFF
    with segment.open("ab") as file:
        file.write(bad)
    assert values_of(bus, "a", "t") == [b"good"]
    send_all(bus, "t", [("K", b"next")])
    assert values_of(bus, "b", "t") == [b"good", b"next"]


def test_a_bad_record_inside_the_log_is_an_error(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path)
    bus.create_topic("t", 1)
    send_all(bus, "t", [("K", f"value-{i}".encode()) for i in range(10)])
    [segment] = segments(bus, "t")
    data = bytearray(segment.read_bytes())
    record_size = len(encode_record(1, b"K", b"", b"value-0"))
    data[4 * record_size - 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    with bus.consumer("g", ["t"]) as consumer, pytest.raises(CorruptLogError, match="invalid"):
        drain(consumer, 10)


def test_reads_cross_segments_and_resume_inside_one(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path, segment_bytes=300)
    bus.create_topic("t", 1)
    for batch in range(10):
        send_all(bus, "t", [("K", f"{batch}-{i}".encode()) for i in range(5)])
    assert len(segments(bus, "t")) > 3
    expected = [f"{b}-{i}".encode() for b in range(10) for i in range(5)]
    with bus.consumer("g", ["t"]) as consumer:
        first = drain(consumer, 23, batch=23)
        consumer.commit()
    assert [m.value for m in first] == expected[:23]
    with bus.consumer("g", ["t"]) as consumer:
        rest = drain(consumer, 27)
    assert [m.offset for m in rest] == list(range(23, 50))
    assert [m.value for m in rest] == expected[23:]


def test_resuming_does_not_need_the_index_or_a_valid_position_hint(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path, segment_bytes=300)
    bus.create_topic("t", 1)
    for batch in range(6):
        send_all(bus, "t", [("K", f"{batch}-{i}".encode()) for i in range(5)])
    with bus.consumer("g", ["t"]) as consumer:
        drain(consumer, 17, batch=17)
        consumer.commit()
    for index in bus.partition_folder("t", 0).glob("*.idx"):
        index.unlink()
    offsets = tmp_path / "groups" / "g" / "offsets" / "t" / "0.json"
    offsets.write_text(json.dumps({"offset": 17, "segment": 0, "position": 3}))
    with bus.consumer("g", ["t"]) as consumer:
        rest = drain(consumer, 13)
    assert [m.offset for m in rest] == list(range(17, 30))
    assert rest[0].value == b"3-2"


def test_retention_by_bytes_deletes_old_segments_and_readers_skip_ahead(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path, segment_bytes=300, retention_bytes=900)
    bus.create_topic("t", 1)
    send_all(bus, "t", [("K", b"early")])
    with bus.consumer("slow", ["t"]) as slow:
        assert len(drain(slow, 1)) == 1
        slow.commit()
    for batch in range(30):
        send_all(bus, "t", [("K", f"{batch}-{i}".encode()) for i in range(5)])
    assert int(segments(bus, "t")[0].stem) > 1
    bus.enforce_retention()
    kept = segments(bus, "t")
    sizes = [path.stat().st_size for path in kept]
    assert sum(sizes[1:]) < 900 <= sum(sizes)
    earliest = int(kept[0].stem)
    with bus.consumer("slow", ["t"]) as slow:
        assert slow.lag() == 151 - earliest
        got = drain(slow, 151 - earliest)
        assert slow.skipped == earliest - 1
    assert got[0].offset == earliest
    assert got[-1].value == b"29-4"
    assert [m.offset for m in got] == list(range(earliest, 151))


def test_retention_by_age_keeps_the_newest_segment(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path, segment_bytes=200, retention_ms=60_000)
    bus.create_topic("t", 1)
    for batch in range(8):
        send_all(bus, "t", [("K", f"{batch}-{i}".encode()) for i in range(5)])
    before = segments(bus, "t")
    old = time.time() - 3600
    for path in before[:3]:
        os.utime(path, (old, old))
    assert bus.enforce_retention() == 3
    assert segments(bus, "t") == before[3:]
    for path in before[3:]:
        os.utime(path, (old, old))
    assert bus.enforce_retention() == len(before) - 4
    assert segments(bus, "t") == before[-1:]


def test_written_records_are_readable_before_their_sync_and_indexed_after(
    tmp_path: Path,
) -> None:
    bus = LocalBus(tmp_path, segment_bytes=300)
    bus.create_topic("t", 1)
    send_all(bus, "t", [("K", f"old-{i}".encode()) for i in range(5)])
    appender = bus.appender("t", 0)
    fresh = [encode_record(1, b"K", b"", f"new-{i}".encode()) for i in range(3)]
    appender.write(fresh, len(fresh))
    try:
        assert values_of(bus, "a", "t")[-3:] == [b"new-0", b"new-1", b"new-2"]
    finally:
        appender.sync()
        appender.close()
    send_all(bus, "t", [("K", b"last")])  # another producer takes the lock and goes on
    with bus.consumer("b", ["t"]) as consumer:
        got = drain(consumer, 9)
    assert [m.offset for m in got] == list(range(9))
    assert got[-1].value == b"last"


def test_producers_flushing_the_same_partitions_keep_every_record(tmp_path: Path) -> None:
    first, second = LocalBus(tmp_path, partitions=4), LocalBus(tmp_path, partitions=4)
    first.create_topic("t")
    keys = [f"SYM{i}" for i in range(12)]
    with first.producer() as one, second.producer() as two:
        for round_ in range(5):
            for producer, name in ((one, "one"), (two, "two")):
                for key in keys:
                    producer.send("t", key, f"{name}-{round_}".encode())
                producer.flush()
    with first.consumer("g", ["t"]) as consumer:
        got = drain(consumer, 120)
    assert len(got) == 120
    for key in keys:
        values = [m.value.decode() for m in got if m.key == key]
        assert values == [f"{name}-{r}" for r in range(5) for name in ("one", "two")]


def test_a_poll_takes_an_equal_share_of_every_partition(tmp_path: Path) -> None:
    """A fetch publishes its symbols in order over every partition; equal shares keep a
    poll to one range of symbols. A partition with fewer messages leaves its share to the
    others, and nothing is skipped or repeated."""
    keys: dict[int, list[str]] = {p: [] for p in range(4)}
    for n in range(400):
        key = f"S{n:03d}"
        keys[partition_for(key, 4)].append(key)
    sent = {p: ks[: 1 if p == 0 else 10] for p, ks in keys.items()}  # partition 0 holds one
    with LocalBus(tmp_path / "bus") as bus:
        bus.create_topic("t", 4)
        with bus.producer() as producer:
            for p in range(4):
                for key in sent[p]:
                    producer.send("t", key, key.encode())
            producer.flush()
        with bus.consumer("g", ["t"]) as consumer:
            first = consumer.poll(12, timeout_s=1.0)
            by_partition = {p: [m.key for m in first if m.partition == p] for p in range(4)}
            assert len(first) == 12
            assert by_partition[0] == sent[0]
            # shares of 3, then the two partition 0 could not give taken from another
            assert sorted(len(by_partition[p]) for p in (1, 2, 3)) == [3, 3, 5]
            for p in (1, 2, 3):
                assert by_partition[p] == sent[p][: len(by_partition[p])]
            rest = drain(consumer, 31 - 12)
    polled = [m.key for m in first] + [m.key for m in rest]
    assert sorted(polled) == sorted(k for ks in sent.values() for k in ks)
