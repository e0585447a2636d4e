"""The bus contract, run against the local log and the in-memory bus."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bus_contract import BusContract, send_all

from marketlake.bus.base import Bus, Message
from marketlake.bus.local import LocalBus
from marketlake.bus.memory import MemoryBus


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


class TestLocalBus(BusContract, GroupSplitContract):
    @pytest.fixture
    def bus(self, tmp_path: Path) -> Iterator[Bus]:
        with LocalBus(tmp_path / "bus", segment_bytes=4096) as bus:
            yield bus


class TestMemoryBus(BusContract, GroupSplitContract):
    @pytest.fixture
    def bus(self) -> Iterator[Bus]:
        with MemoryBus() as bus:
            yield bus
