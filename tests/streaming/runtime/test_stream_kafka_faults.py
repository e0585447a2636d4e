"""Broker faults around the stream processor on a real Kafka-protocol broker (Tansu): no
broker at start, and a broker lost mid-stream."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from pipeline.cli import marketlake_process
from services.tansu import free_port
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

SESSION_TIMEOUT_S = 6  # the Kafka consumer's session.timeout.ms


class OutputReader:
    """Reads a process's text stream to its end in a thread (so the pipe never fills)."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        stream.close()

    def text(self) -> str:
        """What was read so far."""
        with self._changed:
            return "".join(self._lines)

    def line_count(self) -> int:
        """How many lines were read so far."""
        with self._changed:
            return len(self._lines)

    def wait_for(self, needle: str, after: int, timeout_s: float) -> bool:
        """Wait until a line after the first ``after`` holds ``needle``; False after
        ``timeout_s``."""
        with self._changed:
            return self._changed.wait_for(
                lambda: any(needle in line for line in self._lines[after:]), timeout=timeout_s
            )

    def join(self) -> None:
        """Wait for the end of the stream."""
        self._thread.join(timeout=60)


@pytest.mark.parametrize("command", [("stream", "process", "--until-caught-up"), ("stream",)])
def test_no_broker_at_start_is_one_line(home: Path, command: tuple[str, ...]) -> None:
    bus = f"kafka://127.0.0.1:{free_port()}"
    proc = marketlake_process(
        *command, "--home", str(home), "--bus", bus, "--count", "10", timeout=60
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"error: no Kafka broker answered at {bus.removeprefix('kafka://')} within 3 s: is it "
        "running, and is the address right?"
    ]


def test_processor_waits_for_a_lost_broker_and_loses_nothing(
    proxied_broker: TcpProxy, home: Path
) -> None:
    # once the broker is gone the processor stalls at its next lag read (within 1 s), long
    # before it processed 10,000 ticks, and waits for the broker
    count = 10_000
    bus = ("--bus", f"kafka://127.0.0.1:{proxied_broker.port}", "--topic", "lost_ticks")
    produced = marketlake_process(
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
    out, err = OutputReader(processor.stdout), OutputReader(processor.stderr)
    deadline = time.monotonic() + 120
    while tick_commits(home) < 2 and time.monotonic() < deadline:
        assert processor.poll() is None, err.text()
        time.sleep(0.01)
    # away for longer than the group session (6 s: the member must join again) and until a
    # bus call failed for want of the broker, so the processor reports that it waits (a lag
    # read waits 10 s for the broker; on a loaded machine it may take longer to give up)
    proxied_broker.cut()
    cut_at, before_cut = time.monotonic(), out.line_count()
    assert out.wait_for("(waiting for the bus)", before_cut, 180), out.text() + err.text()
    time.sleep(max(0.0, cut_at + SESSION_TIMEOUT_S + 1 - time.monotonic()))
    assert processor.poll() is None, err.text()
    proxied_broker.restore()
    try:
        assert processor.wait(timeout=120) == 0, err.text()
    except subprocess.TimeoutExpired:
        processor.kill()
        processor.wait()
        pytest.fail("the processor did not resume after the broker came back:\n" + out.text())
    finally:
        out.join()
        err.join()
    assert "lag 0 msgs" in out.text()
    assert "(waiting for the bus)" in out.text()
    assert "rdkafka" not in err.text() and "Traceback" not in err.text()

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
