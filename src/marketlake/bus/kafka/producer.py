"""Kafka producers: idempotent, keyed like Java clients, durable once flushed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from marketlake.bus.base import Producer
from marketlake.bus.kafka.driver import KafkaCluster
from marketlake.errors import TransientError

_PRODUCER_DEFAULTS = {"linger.ms": 5}


class KafkaProducer(Producer):
    """An idempotent producer; :meth:`flush` raises the first delivery error.

    ``ensure_topic`` is called with the topic of every message before it is queued.
    """

    def __init__(self, cluster: KafkaCluster, ensure_topic: Callable[[str], None]) -> None:
        self._cluster = cluster
        self._ensure_topic = ensure_topic
        settings = {
            **_PRODUCER_DEFAULTS,
            **cluster.config,
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
        }
        try:
            self._producer = cluster.driver.Producer(settings)
        except cluster.driver.KafkaException as exc:
            raise cluster.error(exc.args[0], "creating a producer") from exc
        self._errors: list[Any] = []
        self._sent = 0

    def send(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Queue one message keyed by ``key``."""
        self._ensure_topic(topic)
        header_list = [(k, v.encode()) for k, v in headers.items()] if headers else None
        while True:
            try:
                self._producer.produce(
                    topic, value, key.encode(), headers=header_list, on_delivery=self._delivered
                )
                break
            except BufferError:
                self._producer.poll(0.1)
        self._sent += 1
        if self._sent % 1000 == 0:
            self._producer.poll(0)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait for every queued message to be acknowledged; raise the first delivery error."""
        remaining = self._producer.flush(-1 if timeout_s is None else timeout_s)
        errors, self._errors = self._errors, []
        if errors:
            raise self._cluster.error(errors[0], "delivery")
        if remaining:
            raise TransientError(
                f"{remaining} messages to {self._cluster.bootstrap_servers} were not "
                f"acknowledged within {timeout_s} s"
            )

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self._errors.append(error)
