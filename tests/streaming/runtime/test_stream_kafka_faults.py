"""Broker faults around the stream processor on a real Kafka-protocol broker (Tansu): no
broker at start, and a broker lost mid-stream."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli import marketlake
from services.tansu import find_tansu, free_port, stop_tansu
from services.tcp_proxy import TcpProxy
from streaming.runtime.stream_checks import (
    SIM_ARGS,
    check_outputs,
    frame,
    lake,
    sim_ticks,
    tick_keys,
)
from streaming.runtime.stream_kill import tick_commits


@pytest.fixture
def proxied_broker(tmp_path: Path) -> Iterator[TcpProxy]:
    """An in-memory Tansu broker reached (and advertised) only through a :class:`TcpProxy`."""
    port = free_port()
    proxy = TcpProxy(port)
    broker = subprocess.Popen(
        [
            str(find_tansu()), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{proxy.port}",
            "--storage-engine", "memory://tansu/",
        ],
        stdout=(tmp_path / "tansu.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    try:
        yield proxy
    finally:
        proxy.close()
        stop_tansu(broker)


@pytest.mark.parametrize("command", [("stream", "process", "--until-caught-up"), ("stream",)])
def test_no_broker_at_start_is_one_line(home: Path, command: tuple[str, ...]) -> None:
    bus = f"kafka://127.0.0.1:{free_port()}"
    proc = marketlake(*command, "--home", str(home), "--bus", bus, "--count", "10", timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"error: no Kafka broker answered at {bus.removeprefix('kafka://')} within 3 s: is it "
        "running, and is the address right?"
    ]


def test_processor_waits_for_a_lost_broker_and_loses_nothing(
    proxied_broker: TcpProxy, home: Path
) -> None:
    count = 20_000
    bus = ("--bus", f"kafka://127.0.0.1:{proxied_broker.port}", "--topic", "lost_ticks")
    produced = marketlake(
        "stream", "produce", "--home", str(home), "--quiet", "--count", str(count),
        "--event-rate", "4", "--rate", "5000", *bus, *SIM_ARGS,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr

    processor = subprocess.Popen(
        [
            sys.executable, "-m", "marketlake", "stream", "process", "--home", str(home),
            "--until-caught-up", "--commit-interval", "0.05", "--max-messages", "4", *bus,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while tick_commits(home) < 2 and time.monotonic() < deadline:
        assert processor.poll() is None, processor.communicate()
        time.sleep(0.01)
    # away for longer than the group session (the member must join again) and than a lag read
    # waits for the broker (10 s), so the processor reports that it waits
    proxied_broker.cut()
    time.sleep(20)
    assert processor.poll() is None, processor.communicate()
    proxied_broker.restore()
    out, err = processor.communicate(timeout=300)
    assert "lag 0 msgs" in out
    assert "(waiting for the bus)" in out
    assert processor.returncode == 0, err
    assert "rdkafka" not in err and "Traceback" not in err

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
