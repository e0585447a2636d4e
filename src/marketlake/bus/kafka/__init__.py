"""Kafka (any Kafka-protocol broker) through ``confluent-kafka``: the scale-out bus."""

from marketlake.bus.kafka.bus import KafkaBus

__all__ = ["KafkaBus"]
