"""Which Kafka errors a caller retries: librdkafka's own errors, classified as the bus
waits on them (a lost broker is waited for; a refused request is not)."""

from __future__ import annotations

import confluent_kafka as ck
import pytest

from marketlake.bus.kafka.driver import translate_error
from marketlake.errors import TerminalError, TransientError


@pytest.mark.parametrize(
    "code",
    [
        ck.KafkaError._TRANSPORT,
        ck.KafkaError._ALL_BROKERS_DOWN,
        ck.KafkaError._TIMED_OUT,
        ck.KafkaError._DESTROY_BROKER,  # a lost broker's handle torn down under a request
        ck.KafkaError.UNKNOWN_MEMBER_ID,
    ],
)
def test_a_lost_broker_is_transient(code: int) -> None:
    error = translate_error(ck.KafkaError(code), "reading lag", "127.0.0.1:9092")
    assert isinstance(error, TransientError)
    assert "reading lag on 127.0.0.1:9092" in str(error)


@pytest.mark.parametrize(
    "code", [ck.KafkaError.TOPIC_AUTHORIZATION_FAILED, ck.KafkaError.INVALID_CONFIG]
)
def test_a_refused_request_is_terminal(code: int) -> None:
    error = translate_error(ck.KafkaError(code), "producing", "127.0.0.1:9092")
    assert isinstance(error, TerminalError) and not isinstance(error, TransientError)
