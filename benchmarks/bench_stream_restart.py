"""`marketlake stream process` on Kafka (Tansu) restarted after a SIGKILL, through the CLI.

Produces ``--ticks`` ticks to a topic of a fresh Tansu broker, starts ``stream process
--until-caught-up`` in a home, SIGKILLs it once the ticks table has ``--kill-after`` commits,
then times ``stream process --until-caught-up`` in the same home from its start to its exit
(target >= 100k ticks/s). The restart's ticks are the ones its run processed (its status
file), those after the killed run's checkpoint.

Each restart is printed end to end (``total``: process start, imports, checkpoint restore,
the consumer's start (a group member waits for the join and for the dead member's session to
expire), processing, final commit) and from its first poll that returned messages (``after
join``), beside a bare consumer (a member of a new group) reading the messages the restart
reads: those after the offsets the group had committed before the restart (the restart skips
the ones its checkpoint covers).

The restarted process is this script with ``--child``: it notes the wall time of the first
non-empty poll on stderr and then runs the CLI's ``main`` unchanged.

Run: ``python benchmarks/bench_stream_restart.py [--ticks N] [--runs R] [--kill-after C]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

SYMBOLS = ["AAPL", "MSFT", "GOOGL", "AMZN", "META", "TSLA", "NVDA", "INTC", "JPM", "V"]
START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
FIRST_POLL = "first-poll-at "
PARTITIONS = 4


def child() -> None:
    """Run the CLI, noting on stderr when the first poll that returned messages began."""
    from marketlake.cli.app import main
    from marketlake.streaming.runtime.processing import ProcessingRun

    original = ProcessingRun.process_poll
    noted: list[float] = []

    def process_poll(self: ProcessingRun, messages: list) -> None:  # type: ignore[type-arg]
        if not noted:
            noted.append(time.time())
            print(f"{FIRST_POLL}{noted[0]}", file=sys.stderr, flush=True)
        original(self, messages)

    ProcessingRun.process_poll = process_poll  # type: ignore[method-assign]
    sys.argv = ["marketlake", *sys.argv[2:]]
    main()


def produce(url: str, topic: str, ticks: int) -> int:
    """Send ``ticks`` simulated ticks to ``topic``; returns the number of messages."""
    from marketlake.bus.registry import open_bus
    from marketlake.sources.live import SimTickSource
    from marketlake.streaming.runtime.producer import TickProducer

    bus = open_bus(url)
    bus.create_topic(topic, PARTITIONS)
    source = SimTickSource(
        SYMBOLS, rate_per_s=None, start=START, count=ticks, event_rate_per_s=2000,
        batch_size=20_000,
    )  # fmt: skip
    producer = TickProducer(bus, topic, PARTITIONS)
    for batch in source.ticks():
        producer.send(batch)
    producer.flush()
    producer.close()
    bus.close()
    return producer.stats.messages


def ticks_commits(home: Path) -> int:
    """Commits in the ticks table's Delta log so far."""
    folder = home / "lake" / "curated" / "ticks" / "_delta_log"
    return len(list(folder.glob("*.json"))) if folder.is_dir() else 0


def cli(home: Path, url: str, topic: str, group: str) -> list[str]:
    """The ``stream process`` command line (run through :func:`child`)."""
    return [
        sys.executable, __file__, "--child", "stream", "process", "--home", str(home),
        "--bus", url, "--topic", topic, "--group", group, "--partitions", str(PARTITIONS),
        "--until-caught-up", "--no-warehouse", "--quiet",
    ]  # fmt: skip


def kill_midway(command: list[str], home: Path, commits: int) -> None:
    """Run ``command`` and SIGKILL it once the ticks table has ``commits`` commits."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if ticks_commits(home) >= commits:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return
        time.sleep(0.005)
    process.kill()
    raise RuntimeError("the processor finished (or hung) before it could be killed")


def committed(url: str, topic: str, group: str) -> dict[int, int]:
    """The offsets ``group`` has committed on ``topic``, per partition."""
    from marketlake.bus.kafka.driver import load_driver

    driver = load_driver()
    servers = url.removeprefix("kafka://")
    consumer = driver.Consumer({"bootstrap.servers": servers, "group.id": group})
    parts = [driver.TopicPartition(topic, p) for p in range(PARTITIONS)]
    out = {tp.partition: max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10)}
    consumer.close()
    return out


def bare_remainder(
    url: str, topic: str, start: dict[int, int], messages: int
) -> tuple[float, float]:
    """Seconds a bare consumer (a member of a new group) takes to read every message from
    ``start`` to the end (``messages`` in all): in total, and from its first non-empty poll."""
    from marketlake.bus.registry import open_bus

    bus = open_bus(url)
    started = time.perf_counter()
    first = None
    with bus.consumer(f"bare-{topic}", [topic]) as consumer:
        seen = sum(start.values())
        while seen < messages:
            polled = time.perf_counter()
            got = consumer.poll(512, 0.1)
            if got and first is None:
                first = polled
            seen += sum(m.offset >= start.get(m.partition, 0) for m in got)
        ended = time.perf_counter()
    bus.close()
    assert first is not None
    return ended - started, ended - first


def restart_once(url: str, root: Path, run: int, ticks: int, kill_after: int) -> tuple[float, ...]:
    """One produce, kill and restart: ticks/s of the restart (total, after join) and of the
    bare consumer (total, after join)."""
    topic, group, home = f"restart{run}", f"restart-group{run}", root / f"home{run}"
    messages = produce(url, topic, ticks)
    command = cli(home, url, topic, group)
    kill_midway(command, home, kill_after)
    start = committed(url, topic, group)
    started = time.time()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    ended = time.time()
    if done.returncode != 0:
        raise RuntimeError(f"the restart failed: {done.stderr}")
    first = next(
        float(line.removeprefix(FIRST_POLL))
        for line in done.stderr.splitlines()
        if line.startswith(FIRST_POLL)
    )
    status = json.loads((home / "stream" / f"{group}.status.json").read_text())
    restarted = int(status["ticks"])
    bare_s, bare_joined_s = bare_remainder(url, topic, start, messages)
    remainder = ticks * (messages - sum(start.values())) / messages
    print(
        f"  run {run}: restart processed {restarted:,} ticks in {ended - started:.2f} s "
        f"({first - started:.2f} s to its first poll); a bare consumer read the "
        f"{messages - sum(start.values()):,} messages after the group's commits "
        f"(~{remainder:,.0f} ticks) in {bare_s:.2f} s ({bare_s - bare_joined_s:.2f} s to its "
        "first poll)",
        flush=True,
    )
    return (
        restarted / (ended - started),
        restarted / (ended - first),
        remainder / bare_s,
        remainder / bare_joined_s,
    )


def main() -> None:
    """Measure ``--runs`` restarts and print the medians."""
    if sys.argv[1:2] == ["--child"]:
        child()
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kill-after", type=int, default=2, help="ticks-table commits")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from services.tansu import start_tansu, stop_tansu

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        url, broker = start_tansu(root)
        try:
            print(f"kafka restart: {args.ticks:,} ticks, killed after {args.kill_after} commits")
            results = [
                restart_once(url, root, i, args.ticks, args.kill_after) for i in range(args.runs)
            ]
        finally:
            stop_tansu(broker)
    total, joined, bare, bare_joined = (statistics.median(c) for c in zip(*results, strict=True))
    print(
        f"  restart total / after join, ticks/s: {total:,.0f}, {joined:,.0f} (target >= 100k "
        f"total); bare consumer of the same messages total / after join: {bare:,.0f}, "
        f"{bare_joined:,.0f}"
    )


if __name__ == "__main__":
    main()
