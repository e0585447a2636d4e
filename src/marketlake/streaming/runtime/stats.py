"""Live figures of a stream-processor run: throughput, lag, late and quarantined ticks,
tick-to-window latency."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

_LATENCY_SAMPLES = 200_000
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds of the tick-to-window latency histogram, in seconds (Prometheus buckets)."""


@dataclass
class ProcessStats:
    """Counts of one processor run (this process only; the checkpoint keeps the totals)."""

    ticks: int = 0
    messages: int = 0
    skipped: int = 0  # messages already covered by the restored checkpoint
    late: int = 0
    duplicates: int = 0  # ticks whose key was already processed (sent twice)
    quarantined: int = 0
    dead_letters: int = 0  # messages that could not be decoded or processed
    windows: int = 0
    bars: int = 0
    alerts: int = 0
    commits: int = 0
    written_ticks: int = 0
    lag: int | None = None
    waiting: bool = False  # the bus is unreachable and the processor waits for it
    started: float = field(default_factory=time.monotonic)
    latencies_us: deque[int] = field(default_factory=lambda: deque(maxlen=_LATENCY_SAMPLES))
    latency_counts: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_S))
    latency_sum_us: int = 0
    latency_count: int = 0

    @property
    def elapsed_s(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Ticks processed per second since the start."""
        return self.ticks / max(self.elapsed_s, 1e-9)

    def record_latency(self, latency_us: int) -> None:
        """Count one send-to-window latency (kept as a sample and in the histogram)."""
        self.latencies_us.append(latency_us)
        self.latency_sum_us += latency_us
        self.latency_count += 1
        seconds = latency_us / 1e6
        for index, bound in enumerate(LATENCY_BUCKETS_S):
            if seconds <= bound:
                self.latency_counts[index] += 1

    def latency_ms(self, quantile: float = 0.99) -> float | None:
        """The ``quantile`` of send-to-window latencies seen so far, in milliseconds."""
        if not self.latencies_us:
            return None
        ordered = sorted(self.latencies_us)
        index = min(int(quantile * len(ordered)), len(ordered) - 1)
        return ordered[index] / 1000.0

    def line(self) -> str:
        """A one-line summary for the terminal."""
        lag = "?" if self.lag is None else f"{self.lag:,}"
        p99 = self.latency_ms()
        latency = "" if p99 is None else f"  p99 latency {p99:,.1f} ms"
        if self.waiting:
            latency += "  (waiting for the bus)"
        return (
            f"processed {self.ticks:,} ticks ({self.rate:,.0f}/s)  lag {lag} msgs  "
            f"late {self.late:,}  duplicates {self.duplicates:,}  "
            f"quarantined {self.quarantined:,}  dead letters {self.dead_letters:,}  "
            f"windows {self.windows:,}  "
            f"alerts {self.alerts:,}  commits {self.commits}{latency}"
        )
