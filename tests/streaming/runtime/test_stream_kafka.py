"""The stream pipeline over a real Kafka-protocol broker (Tansu): producer and processor kills,
broker outage."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from pipeline.cli import marketlake_process
from services.tansu import find_tansu, free_port, stop_tansu
from streaming.runtime.stream_checks import (
    SIM_ARGS,
    check_outputs,
    frame,
    lake,
    sim_ticks,
    tick_keys,
)
from streaming.runtime.stream_kill import kill_after_commits, kill_producer_midway


def start_tansu_on(port: int, log: Path) -> subprocess.Popen[bytes]:
    """An in-memory Tansu broker listening on ``port`` (waits until it accepts connections)."""
    listener = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(find_tansu()), "broker", "--listener-url", listener,
            "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"tansu did not listen on port {port}")


def test_processor_killed_on_kafka_ends_with_every_tick_once(
    tansu_url: str, tmp_path: Path
) -> None:
    count = 10_000
    bus = ("--bus", f"{tansu_url}?partitions=3", "--topic", "kill_ticks")
    home = tmp_path / "home"
    produce = ("--count", str(count), "--event-rate", "4", "--partitions", "3", *bus, *SIM_ARGS)
    # a producer killed midway and run again sends its first ticks twice (it is killed at its
    # first progress report, after 0.5 s: at 4,000 ticks a second, about 2,000 ticks)
    assert 0 < kill_producer_midway(home, "--rate", "4000", *produce) < count
    produced = marketlake_process(
        "stream", "produce", "--home", str(home), "--quiet", "--rate", "40000", *produce
    )
    assert produced.returncode == 0, produced.stderr

    group = ("--group", "kill-test", "--partitions", "3", *bus)
    kills = sum(kill_after_commits(home, 1, *group) for _ in range(3))
    assert kills >= 2, "the processor finished before it could be killed"
    done = marketlake_process("stream", "process", "--home", str(home), "--until-caught-up", *group)
    assert done.returncode == 0, done.stderr

    expected = sim_ticks(count, 4)
    tables = lake(home)
    ticks = tables.read("curated/ticks")
    assert ticks.num_rows == count
    assert tick_keys(ticks) == tick_keys(expected)
    check_outputs(
        frame(tables.read("curated/bars_1m")),
        frame(tables.read("analytics/stream_windows")),
        expected,
    )


def test_producer_waits_for_an_unreachable_broker_and_loses_nothing(
    tmp_path: Path, home: Path
) -> None:
    count = 6_000
    port = free_port()
    bus = ("--bus", f"kafka://127.0.0.1:{port}", "--topic", "outage_ticks")
    producer = subprocess.Popen(
        [
            sys.executable, "-m", "marketlake", "stream", "produce", "--home", str(home),
            "--count", str(count), "--event-rate", "2", *bus, *SIM_ARGS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    time.sleep(4)  # the broker is down: the producer keeps its ticks and retries
    assert producer.poll() is None, producer.communicate()
    broker = start_tansu_on(port, tmp_path / "tansu.log")
    try:
        out, err = producer.communicate(timeout=120)
        assert producer.returncode == 0, err
        assert f"produced {count:,} ticks" in out
        done = marketlake_process(
            "stream", "process", "--home", str(home), "--until-caught-up", *bus,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    finally:
        stop_tansu(broker)
    expected = sim_ticks(count, 2)
    ticks = lake(home).read("curated/ticks")
    assert ticks.num_rows == count
    assert tick_keys(ticks) == tick_keys(expected)
