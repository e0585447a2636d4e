"""The message bus: a durable local log by default, Kafka when configured."""
