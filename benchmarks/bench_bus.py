"""Throughput of the local bus next to raw buffered file I/O of the same bytes, in the same run.

Run by hand: ``python benchmarks/bench_bus.py``. For each message size it prints the median of
five runs of: producing every message and flushing, consuming every message and committing, and
a baseline that writes (then reads) the same values through a buffered file with one fsync.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from marketlake.bus.local import LocalBus

RUNS = 5
CASES = ((100, 200_000), (64 * 1024, 2_000))
KEYS = [f"SYM{i}" for i in range(10)]


def produce(bus: LocalBus, values: list[bytes]) -> None:
    """Send every value and flush."""
    with bus.producer() as producer:
        for i, value in enumerate(values):
            producer.send("bench", KEYS[i % len(KEYS)], value)
        producer.flush()


def consume(bus: LocalBus, count: int) -> None:
    """Read ``count`` messages in one group and commit."""
    with bus.consumer("bench", ["bench"]) as consumer:
        seen = 0
        while seen < count:
            seen += len(consumer.poll(10_000, timeout_s=1.0))
        consumer.commit()


def write_baseline(path: Path, values: list[bytes]) -> None:
    """Write the values through a buffered file, then fsync."""
    with path.open("wb") as file:
        for value in values:
            file.write(value)
        file.flush()
        os.fsync(file.fileno())


def read_baseline(path: Path, values: list[bytes]) -> None:
    """Read the values back one by one through a buffered file."""
    size = len(values[0])
    with path.open("rb") as file:
        for _ in values:
            file.read(size)


def timed(action: Callable[..., None], *args: object) -> float:
    """Seconds taken by ``action(*args)``."""
    start = time.perf_counter()
    action(*args)
    return time.perf_counter() - start


def run_case(size: int, count: int) -> None:
    """Measure one message size and print rates and ratios."""
    values = [os.urandom(size) for _ in range(count)]
    timings: dict[str, list[float]] = {"produce": [], "consume": [], "write": [], "read": []}
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as folder:
            bus = LocalBus(Path(folder) / "bus")
            timings["produce"].append(timed(produce, bus, values))
            timings["consume"].append(timed(consume, bus, count))
            raw = Path(folder) / "raw.bin"
            timings["write"].append(timed(write_baseline, raw, values))
            timings["read"].append(timed(read_baseline, raw, values))
    rate = {name: count / statistics.median(times) for name, times in timings.items()}
    print(f"{count} messages of {size} bytes (median of {RUNS} runs)")
    for bus_step, raw_step in (("produce", "write"), ("consume", "read")):
        print(
            f"  {bus_step:8s} {rate[bus_step]:>12,.0f} msg/s   raw {raw_step:5s} "
            f"{rate[raw_step]:>12,.0f} msg/s   ratio {rate[bus_step] / rate[raw_step]:.2f}"
        )


def main() -> None:
    """Run every case."""
    for size, count in CASES:
        run_case(size, count)


if __name__ == "__main__":
    main()
