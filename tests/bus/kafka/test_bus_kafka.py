"""The bus contract against a real Kafka-protocol broker (Tansu), plus Kafka specifics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from bus_contract import BusContract, drain, send_all

from marketlake.bus.base import Bus, Retention
from marketlake.bus.kafka.bus import KafkaBus
from marketlake.bus.registry import open_bus
from marketlake.errors import TransientError
from services.tcp_proxy import TcpProxy

SESSION_TIMEOUT_S = 6  # the Kafka consumer's session.timeout.ms


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


def test_lag_counts_partitions_another_member_holds(tansu_url: str) -> None:
    topic, group = f"held-{uuid.uuid4().hex[:8]}", f"held-g-{uuid.uuid4().hex[:8]}"
    with open_bus(tansu_url) as bus:
        bus.create_topic(topic, 4)
        send_all(bus, topic, [(f"K{i}", b"x") for i in range(40)])
        holder = bus.consumer(group, [topic])
        member = bus.consumer(group, [topic])
        try:
            assert drain(holder, 1)  # the holder owns partitions and never commits
            mine: dict[int, int] = {}
            held: set[int] = set()
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not (mine and held - set(mine)):
                for message in member.poll(100, timeout_s=0.2):
                    mine[message.partition] = mine.get(message.partition, 0) + 1
                held = {m.partition for m in holder.poll(100, timeout_s=0.2)} or held
            assert mine and held - set(mine), "the group did not split the partitions"
            member.commit()
            # the member caught up with its partitions, not the group with the topic
            assert member.lag() == 40 - sum(mine.values()) > 0
        finally:
            holder.close()
            member.close()


def _topic_configs(tansu_url: str, topic: str) -> dict[str, str]:
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": tansu_url.removeprefix("kafka://")})
    futures = admin.describe_configs([ConfigResource("topic", topic)])
    (future,) = futures.values()
    return {name: entry.value for name, entry in future.result(30).items()}


def test_topic_retention_becomes_the_topic_configs(tansu_url: str) -> None:
    topic = f"kept-{uuid.uuid4().hex[:8]}"
    with open_bus(tansu_url) as bus:
        bus.create_topic(topic, 2, Retention(max_bytes=1_000_000, max_age_ms=60_000))
    configs = _topic_configs(tansu_url, topic)
    assert (configs["retention.bytes"], configs["retention.ms"]) == ("500000", "60000")
    with open_bus(tansu_url) as bus:  # an existing topic gets the new retention
        bus.create_topic(topic, 2, Retention(max_bytes=400_000))
    assert _topic_configs(tansu_url, topic)["retention.bytes"] == "200000"


def test_a_member_whose_session_expired_joins_again_and_loses_nothing(
    proxied_broker: TcpProxy,
) -> None:
    # the broker is away for longer than the group session: the group forgets the member, so
    # its commit cannot succeed; it must not fail forever, and the next poll joins again and
    # reads, from the last commit, what was not committed
    with open_bus(f"kafka://127.0.0.1:{proxied_broker.port}") as bus:
        topic = f"expired_{uuid.uuid4().hex[:8]}"
        bus.create_topic(topic, 1)
        send_all(bus, topic, [(f"k{i}", f"v{i}".encode()) for i in range(50)])
        with bus.consumer("expired", [topic]) as consumer:
            first = drain(consumer, 50)
            assert len(first) == 50
            proxied_broker.cut()
            time.sleep(SESSION_TIMEOUT_S + 2)
            proxied_broker.restore()
            consumer.commit()  # the group no longer counts this member: nothing committed
            again = drain(consumer, 50)
            assert [m.value for m in again] == [m.value for m in first]
            consumer.commit()
            assert consumer.lag() == 0
