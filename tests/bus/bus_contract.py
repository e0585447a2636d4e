"""The bus contract as test classes: subclass them and provide a ``bus`` fixture.

:class:`BusContract` holds for every bus; :class:`GroupSplitContract` for buses whose group
members in one process rebalance quickly (the local log and the in-memory bus).

Every test uses fresh topic and group names (``names``), so one broker can serve them all.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator

import pytest

from marketlake.bus.base import Bus, Consumer, Message

MAX_EMPTY_POLLS = 60


def drain(consumer: Consumer, count: int, batch: int = 1000) -> list[Message]:
    """Poll until ``count`` messages arrived or MAX_EMPTY_POLLS polls in a row brought none."""
    out: list[Message] = []
    empty = 0
    while len(out) < count and empty < MAX_EMPTY_POLLS:
        got = consumer.poll(min(batch, count - len(out)), timeout_s=1.0)
        out += got
        empty = 0 if got else empty + 1
    return out


def send_all(bus: Bus, topic: str, items: list[tuple[str, bytes]]) -> None:
    """Send ``(key, value)`` pairs and flush."""
    with bus.producer() as producer:
        for key, value in items:
            producer.send(topic, key, value)
        producer.flush()


class BusContract:
    """Behaviour every :class:`Bus` implementation must show."""

    @pytest.fixture
    def bus(self) -> Iterator[Bus]:
        raise NotImplementedError

    @pytest.fixture
    def names(self) -> Callable[[str], str]:
        token = uuid.uuid4().hex[:8]
        return lambda prefix: f"{prefix}-{token}"

    def test_topics_lists_created_topics_and_creates_none(
        self, bus: Bus, names: Callable[[str], str]
    ) -> None:
        topic = names("listed")
        assert topic not in bus.topics()
        bus.create_topic(topic, 2)
        listed = bus.topics()
        assert topic in listed and listed == sorted(listed)
        assert bus.topics() == listed  # listing twice changes nothing

    def test_messages_of_one_key_keep_their_order(
        self, bus: Bus, names: Callable[[str], str]
    ) -> None:
        topic = names("orders")
        bus.create_topic(topic, 4)
        items = [(f"K{i % 7}", f"{i}".encode()) for i in range(140)]
        send_all(bus, topic, items)
        with bus.consumer(names("g"), [topic]) as consumer:
            got = drain(consumer, len(items))
        assert sorted(m.value for m in got) == sorted(v for _, v in items)
        per_key: dict[str, list[int]] = defaultdict(list)
        for message in got:
            per_key[message.key].append(int(message.value))
        for key, values in per_key.items():
            assert values == sorted(values), key
            assert values == [i for i in range(140) if f"K{i % 7}" == key]

    def test_a_key_always_lands_in_the_same_partition(
        self, bus: Bus, names: Callable[[str], str]
    ) -> None:
        topic = names("stable")
        bus.create_topic(topic, 4)
        keys = [f"S{i}" for i in range(12)]
        send_all(bus, topic, [(k, b"first") for k in keys])
        send_all(bus, topic, [(k, b"second") for k in reversed(keys)])
        with bus.consumer(names("g"), [topic]) as consumer:
            got = drain(consumer, 2 * len(keys))
        partitions: dict[str, set[int]] = defaultdict(set)
        for message in got:
            partitions[message.key].add(message.partition)
            assert message.topic == topic
            assert message.timestamp_ms > 0
        assert sorted(partitions) == sorted(keys)
        assert all(len(found) == 1 for found in partitions.values())
        assert len({p for found in partitions.values() for p in found}) > 1

    def test_offsets_count_up_per_partition(self, bus: Bus, names: Callable[[str], str]) -> None:
        topic = names("offsets")
        bus.create_topic(topic, 2)
        send_all(bus, topic, [(f"K{i % 5}", b"x") for i in range(50)])
        with bus.consumer(names("g"), [topic]) as consumer:
            got = drain(consumer, 50)
        by_partition: dict[int, list[int]] = defaultdict(list)
        for message in got:
            by_partition[message.partition].append(message.offset)
        for offsets in by_partition.values():
            assert offsets == list(range(len(offsets)))

    def test_a_new_consumer_resumes_from_committed_offsets(
        self, bus: Bus, names: Callable[[str], str]
    ) -> None:
        topic, group = names("resume"), names("g")
        bus.create_topic(topic, 3)
        send_all(bus, topic, [(f"K{i % 4}", f"old{i}".encode()) for i in range(20)])
        with bus.consumer(group, [topic]) as consumer:
            assert len(drain(consumer, 20)) == 20
            consumer.commit()
        send_all(bus, topic, [(f"K{i % 4}", f"new{i}".encode()) for i in range(6)])
        with bus.consumer(group, [topic]) as consumer:
            got = drain(consumer, 6)
            assert consumer.poll(10, timeout_s=0.5) == []
        assert sorted(m.value for m in got) == sorted(f"new{i}".encode() for i in range(6))

    def test_a_sole_consumer_reads_every_partition_and_commits_for_the_group(
        self, bus: Bus, names: Callable[[str], str]
    ) -> None:
        topic, group = names("sole"), names("g")
        bus.create_topic(topic, 3)
        send_all(bus, topic, [(f"K{i % 5}", f"old{i}".encode()) for i in range(20)])
        with bus.consumer(group, [topic]) as consumer:
            assert len(drain(consumer, 20)) == 20
            consumer.commit()
        send_all(bus, topic, [(f"K{i % 5}", f"mid{i}".encode()) for i in range(9)])
        with bus.sole_consumer(group, [topic]) as sole:
            got = drain(sole, 9)
            assert sole.lag() == 9
            sole.commit()
            assert sole.lag() == 0
        assert sorted(m.value for m in got) == sorted(f"mid{i}".encode() for i in range(9))
        assert len({m.partition for m in got}) > 1
        send_all(bus, topic, [(f"K{i % 5}", f"new{i}".encode()) for i in range(4)])
        with bus.consumer(group, [topic]) as consumer:
            later = drain(consumer, 4)
        assert sorted(m.value for m in later) == sorted(f"new{i}".encode() for i in range(4))

    def test_uncommitted_messages_are_delivered_again(
        self, bus: Bus, names: Callable[[str], str]
    ) -> None:
        topic, group = names("redeliver"), names("g")
        bus.create_topic(topic, 1)
        values = [f"v{i}".encode() for i in range(30)]
        send_all(bus, topic, [("K", v) for v in values])
        with bus.consumer(group, [topic]) as consumer:
            first = drain(consumer, 10, batch=10)
            consumer.commit()
            rest = drain(consumer, 20)
        assert [m.value for m in first + rest] == values
        with bus.consumer(group, [topic]) as consumer:
            again = drain(consumer, 20)
        assert [m.value for m in again] == values[10:]
        assert [m.offset for m in again] == list(range(10, 30))

    def test_groups_read_independently(self, bus: Bus, names: Callable[[str], str]) -> None:
        topic = names("groups")
        bus.create_topic(topic, 2)
        send_all(bus, topic, [(f"K{i % 3}", f"{i}".encode()) for i in range(12)])
        with bus.consumer(names("one"), [topic]) as one:
            assert len(drain(one, 12)) == 12
            one.commit()
        with bus.consumer(names("two"), [topic]) as two:
            assert sorted(int(m.value) for m in drain(two, 12)) == list(range(12))

    def test_lag_counts_messages_not_yet_committed(
        self, bus: Bus, names: Callable[[str], str]
    ) -> None:
        topic = names("lag")
        bus.create_topic(topic, 2)
        send_all(bus, topic, [(f"K{i % 3}", b"x") for i in range(15)])
        with bus.consumer(names("g"), [topic]) as consumer:
            assert consumer.lag() == 15
            assert len(drain(consumer, 15)) == 15
            assert consumer.lag() == 15
            consumer.commit()
            assert consumer.lag() == 0
            send_all(bus, topic, [(f"K{i % 3}", b"y") for i in range(4)])
            assert consumer.lag() == 4

    def test_headers_round_trip(self, bus: Bus, names: Callable[[str], str]) -> None:
        topic = names("headers")
        headers = {"schema": "tick/v1", "source": "sim", "note": "ünïcode"}
        with bus.producer() as producer:
            producer.send(topic, "AAPL", b"with", headers)
            producer.send(topic, "AAPL", b"without")
        with bus.consumer(names("g"), [topic]) as consumer:
            got = drain(consumer, 2)
        assert [m.value for m in got] == [b"with", b"without"]
        assert dict(got[0].headers) == headers
        assert dict(got[1].headers) == {}
        assert {m.key for m in got} == {"AAPL"}

    def test_an_empty_poll_returns_an_empty_list(
        self, bus: Bus, names: Callable[[str], str]
    ) -> None:
        topic = names("empty")
        bus.create_topic(topic, 2)
        with bus.consumer(names("g"), [topic]) as consumer:
            assert consumer.poll(100, timeout_s=0.3) == []
            assert consumer.lag() == 0

    def test_create_topic_is_idempotent(self, bus: Bus, names: Callable[[str], str]) -> None:
        topic = names("idem")
        bus.create_topic(topic, 3)
        bus.create_topic(topic, 3)
        bus.create_topic(topic, 6)
        send_all(bus, topic, [(f"K{i}", b"x") for i in range(60)])
        with bus.consumer(names("g"), [topic]) as consumer:
            got = drain(consumer, 60)
        assert len(got) == 60
        assert {m.partition for m in got} == {0, 1, 2}

    def test_one_consumer_reads_several_topics(self, bus: Bus, names: Callable[[str], str]) -> None:
        first, second = names("first"), names("second")
        send_all(bus, first, [("A", b"1"), ("B", b"2")])
        send_all(bus, second, [("A", b"3")])
        with bus.consumer(names("g"), [first, second]) as consumer:
            got = drain(consumer, 3)
        assert sorted((m.topic, m.value) for m in got) == [
            (first, b"1"),
            (first, b"2"),
            (second, b"3"),
        ]

    def test_large_values_round_trip(self, bus: Bus, names: Callable[[str], str]) -> None:
        topic = names("large")
        values = [bytes([i]) * (600_000 + i) for i in range(3)]
        send_all(bus, topic, [("BIG", v) for v in values])
        with bus.consumer(names("g"), [topic]) as consumer:
            got = drain(consumer, 3)
        assert [m.value for m in got] == values


class GroupSplitContract:
    """Consumers of one group in one process share the partitions without overlap."""

    def test_consumers_of_one_group_split_the_partitions(
        self, bus: Bus, names: Callable[[str], str]
    ) -> None:
        topic, group = names("split"), names("g")
        bus.create_topic(topic, 4)
        one = bus.consumer(group, [topic])
        two = bus.consumer(group, [topic])
        send_all(bus, topic, [(f"K{i % 16}", f"{i}".encode()) for i in range(400)])
        got: dict[str, list[Message]] = {"one": [], "two": []}
        for _ in range(200):
            if len(got["one"]) + len(got["two"]) >= 400:
                break
            for name, consumer in (("one", one), ("two", two)):
                got[name] += consumer.poll(20, timeout_s=0.05)
                consumer.commit()
        one.close()
        two.close()
        seen_one = {(m.partition, m.offset) for m in got["one"]}
        seen_two = {(m.partition, m.offset) for m in got["two"]}
        assert not seen_one & seen_two
        assert sorted(int(m.value) for m in got["one"] + got["two"]) == list(range(400))
        assert got["one"] and got["two"]
        assert not {m.partition for m in got["one"]} & {m.partition for m in got["two"]}

    def test_lag_counts_the_partitions_other_members_hold(
        self, bus: Bus, names: Callable[[str], str]
    ) -> None:
        topic, group = names("lagsplit"), names("g")
        bus.create_topic(topic, 4)
        send_all(bus, topic, [(f"K{i % 16}", b"x") for i in range(40)])
        with bus.consumer(group, [topic]) as one, bus.consumer(group, [topic]) as two:
            read: list[Message] = []
            for _ in range(20):
                read += one.poll(100, timeout_s=0.05)
            one.commit()
            # one committed its share only: the other partitions are still the group's lag
            assert 0 < len(read) < 40
            assert one.lag() == two.lag() == 40 - len(read)
            for _ in range(20):
                two.poll(100, timeout_s=0.05)
            two.commit()
            assert one.lag() == two.lag() == 0
