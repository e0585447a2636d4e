"""A separate process that uses the local bus, for multi-process tests.

    python bus_worker.py produce ROOT TOPIC COUNT BATCH VALUE_SIZE   (COUNT 0: until killed)
    python bus_worker.py consume ROOT GROUP TOPIC OUT STOP           (until STOP exists and idle)
    python bus_worker.py take ROOT GROUP TOPIC COUNT                 (read COUNT, commit, print)

Produced values are ``<key>:<n>:`` padded with ``.``, where n counts up from 0 per key, so
readers can check that every key's records are complete and in order.
"""

from __future__ import annotations

import json
import os
import sys
from itertools import count as counter
from pathlib import Path

from marketlake.bus.local.bus import LocalBus

KEYS = [f"K{i}" for i in range(8)]


def produce(root: str, topic: str, count: int, batch: int, value_size: int) -> None:
    """Send ``count`` messages (forever when 0), flushing every ``batch``."""
    bus = LocalBus(Path(root))
    producer = bus.producer()
    for i in counter() if count == 0 else range(count):
        key = KEYS[i % len(KEYS)]
        value = f"{key}:{i // len(KEYS)}:".encode()
        producer.send(topic, key, value.ljust(value_size, b"."))
        if (i + 1) % batch == 0:
            producer.flush()
    producer.close()


def consume(root: str, group: str, topic: str, out: str, stop: str) -> None:
    """Poll and commit until ``stop`` exists and a poll returns nothing; log what was read."""
    bus = LocalBus(Path(root))
    status = Path(out + ".assignment")
    with bus.consumer(group, [topic]) as consumer, open(out, "a") as log:
        while True:
            messages = consumer.poll(100, timeout_s=0.1)
            for message in messages:
                log.write(f"{message.partition} {message.offset} {message.value.decode()}\n")
            log.flush()
            consumer.commit()
            temp = status.with_suffix(".tmp")
            temp.write_text(json.dumps([p for _, p in consumer.assignment]))
            os.replace(temp, status)
            if not messages and os.path.exists(stop):
                return


def take(root: str, group: str, topic: str, count: int) -> None:
    """Read ``count`` messages, commit them and print their values as JSON."""
    bus = LocalBus(Path(root))
    values: list[str] = []
    with bus.consumer(group, [topic]) as consumer:
        while len(values) < count:
            values += [m.value.decode() for m in consumer.poll(count - len(values), 1.0)]
        consumer.commit()
    print(json.dumps(values))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "produce":
        produce(args[0], args[1], int(args[2]), int(args[3]), int(args[4]))
    elif command == "consume":
        consume(*args)
    elif command == "take":
        take(args[0], args[1], args[2], int(args[3]))
    else:
        raise SystemExit(f"unknown command {command!r}")
