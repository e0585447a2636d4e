"""The bus contract against a real Kafka-protocol broker (Tansu), plus Kafka specifics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bus_contract import BusContract, drain, send_all

from marketlake.bus.base import Bus
from marketlake.bus.kafka.bus import KafkaBus
from marketlake.bus.registry import open_bus
from marketlake.errors import TransientError
from services.tansu import tansu_url

__all__ = ["tansu_url"]


class TestKafkaBus(BusContract):
    @pytest.fixture
    def bus(self, tansu_url: str) -> Iterator[Bus]:
        with open_bus(tansu_url) as bus:
            yield bus


def test_url_settings_reach_the_clients() -> None:
    bus = KafkaBus.from_url(
        "kafka://alice:s%40cret@h1:9092,h2:9093?security.protocol=SASL_SSL"
        "&sasl.mechanism=SCRAM-SHA-512&partitions=6&replication_factor=3"
    )
    assert bus.bootstrap_servers == "h1:9092,h2:9093"
    assert (bus.partitions, bus.replication_factor) == (6, 3)
    assert bus.config == {
        "bootstrap.servers": "h1:9092,h2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice",
        "sasl.password": "s@cret",
    }


def test_settings_can_be_given_as_a_dict(tansu_url: str) -> None:
    servers = tansu_url.removeprefix("kafka://")
    bus = KafkaBus(servers, {"client.id": "marketlake-test"}, partitions=2)
    send_all(bus, "dict-config", [("K", b"v")])
    with bus.consumer("dict-config-g", ["dict-config"]) as consumer:
        assert [m.value for m in drain(consumer, 1)] == [b"v"]


def test_undeliverable_messages_fail_flush_without_secrets() -> None:
    bus = KafkaBus.from_url(
        "kafka://user:hunter2@127.0.0.1:1?message.timeout.ms=500&socket.timeout.ms=200&log_level=0"
    )
    bus._topics.add("nowhere")
    producer = bus.producer()
    producer.send("nowhere", "K", b"v")
    with pytest.raises(TransientError) as raised:
        producer.flush()
    assert "127.0.0.1:1" in str(raised.value)
    assert "hunter2" not in str(raised.value)
