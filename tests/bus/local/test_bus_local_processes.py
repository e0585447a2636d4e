"""The local log shared by several processes: killed producers, concurrent readers, groups."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from bus_contract import drain, send_all

from marketlake.bus.base import Message
from marketlake.bus.local.bus import LocalBus

WORKER = Path(__file__).with_name("bus_worker.py")
KEYS = [f"K{i}" for i in range(8)]


def start_worker(*args: object) -> subprocess.Popen[bytes]:
    """Run bus_worker.py with ``args`` in a new process."""
    return subprocess.Popen([sys.executable, str(WORKER), *map(str, args)])


def wait_for(condition: Callable[[], bool], timeout_s: float = 120) -> None:
    """Check ``condition`` every 0.05 s until it holds; fail after ``timeout_s`` seconds (a
    limit only a broken bus reaches: worker processes start slowly on a loaded machine)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition did not hold within {timeout_s} s")
        time.sleep(0.05)


def assert_complete_per_key(messages: list[Message]) -> dict[str, int]:
    """Each key's values count 0, 1, 2, ... in order; returns the count per key."""
    counts: dict[str, int] = defaultdict(int)
    for message in messages:
        key, n, _ = message.value.split(b":", 2)
        assert key.decode() == message.key
        assert int(n) == counts[message.key], (message.key, int(n))
        counts[message.key] += 1
    return counts


def read_all(bus: LocalBus, group: str, topic: str) -> list[Message]:
    """Every message now in ``topic``, read by a fresh consumer of ``group`` (not committed)."""
    out: list[Message] = []
    with bus.consumer(group, [topic]) as consumer:
        while batch := consumer.poll(10_000, timeout_s=0.2):
            out += batch
    return out


def test_a_killed_producer_leaves_only_complete_records(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path / "bus")
    bus.create_topic("ticks", 2)
    producer = start_worker("produce", bus.root, "ticks", 0, 40, 30_000)
    with bus.consumer("watch", ["ticks"]) as watcher:
        seen = 0

        def produced_600() -> bool:
            nonlocal seen
            seen += len(watcher.poll(1000, timeout_s=0.1))
            return seen >= 600

        wait_for(produced_600)
    producer.send_signal(signal.SIGKILL)
    producer.wait()

    survived = read_all(bus, "after", "ticks")
    assert len(survived) >= 600
    assert all(len(m.value) == 30_000 for m in survived)
    counts = assert_complete_per_key(sorted(survived, key=lambda m: (m.partition, m.offset)))

    send_all(bus, "ticks", [(key, f"{key}:{counts[key]}:".encode()) for key in KEYS])
    both = read_all(bus, "after", "ticks")
    assert len(both) == len(survived) + len(KEYS)
    assert_complete_per_key(sorted(both, key=lambda m: (m.partition, m.offset)))


def test_a_producer_and_a_consumer_in_separate_processes_run_at_once(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path / "bus", segment_bytes=20_000)
    bus.create_topic("ticks", 3)
    with bus.consumer("live", ["ticks"]) as consumer:
        producer = start_worker("produce", bus.root, "ticks", 4000, 50, 40)
        got = drain(consumer, 4000)
        assert producer.wait() == 0
        assert consumer.poll(100, timeout_s=0.2) == []
    assert len(got) == 4000
    by_partition = sorted(got, key=lambda m: (m.partition, m.offset))
    assert assert_complete_per_key(by_partition) == dict.fromkeys(KEYS, 500)


def test_committed_offsets_survive_a_new_process(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path / "bus")
    bus.create_topic("bars", 1)
    send_all(bus, "bars", [("AAPL", f"{i}".encode()) for i in range(20)])
    taken = subprocess.run(
        [sys.executable, str(WORKER), "take", bus.root, "etl", "bars", "8"],
        check=True,
        capture_output=True,
    )
    assert json.loads(taken.stdout) == [f"{i}" for i in range(8)]
    with bus.consumer("etl", ["bars"]) as consumer:
        assert consumer.lag() == 12
        rest = drain(consumer, 12)
    assert [m.value.decode() for m in rest] == [f"{i}" for i in range(8, 20)]


def read_log(path: Path) -> list[tuple[int, int, str]]:
    """The ``partition offset value`` lines a consume worker wrote."""
    if not path.exists():
        return []
    rows = [line.split(" ", 2) for line in path.read_text().splitlines()]
    return [(int(p), int(o), v) for p, o, v in rows]


def assignment(path: Path) -> list[int]:
    """The partitions a consume worker last reported owning."""
    status = Path(f"{path}.assignment")
    return json.loads(status.read_text()) if status.exists() else []


def test_consumer_processes_of_one_group_split_the_partitions(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path / "bus")
    bus.create_topic("ticks", 4)
    outs = [tmp_path / "one.log", tmp_path / "two.log"]
    stop = tmp_path / "stop"
    workers = [start_worker("consume", bus.root, "g", "ticks", out, stop) for out in outs]
    try:
        wait_for(lambda: [len(assignment(out)) for out in outs] == [2, 2])
        send_all(bus, "ticks", [(f"K{i % 16}", f"v{i}".encode()) for i in range(2000)])
        wait_for(lambda: sum(len(read_log(out)) for out in outs) >= 2000)
    finally:
        stop.touch()
        codes = [worker.wait() for worker in workers]
    assert codes == [0, 0]
    one, two = (read_log(out) for out in outs)
    assert one and two
    assert not {(p, o) for p, o, _ in one} & {(p, o) for p, o, _ in two}
    assert not {p for p, _, _ in one} & {p for p, _, _ in two}
    assert sorted(v for _, _, v in one + two) == sorted(f"v{i}" for i in range(2000))


def test_a_partition_whose_owner_dies_is_taken_over(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path / "bus")
    bus.create_topic("ticks", 2)
    out = tmp_path / "owner.log"
    owner = start_worker("consume", bus.root, "g", "ticks", out, tmp_path / "never")
    try:
        wait_for(lambda: len(assignment(out)) == 2)
        # Frozen, the owner stays alive holding both partitions (running, it would hand one
        # over to the newcomer at its next rebalance, possibly before the check below).
        owner.send_signal(signal.SIGSTOP)
        with bus.consumer("g", ["ticks"]) as blocked:
            assert blocked.assignment == []
            owner.send_signal(signal.SIGKILL)
            owner.wait()
            send_all(bus, "ticks", [(f"K{i}", b"x") for i in range(10)])
            assert len(drain(blocked, 10)) == 10
            assert blocked.assignment == [("ticks", 0), ("ticks", 1)]
    finally:
        owner.kill()  # a no-op once it was killed above
        owner.wait()
