"""The live status of a stream processor, kept in a small JSON file beside the bus marks.

The processor rewrites it about once a second (atomically: a temporary file renamed over
the old one); ``marketlake serve`` reads it for its Prometheus metrics. It holds throughput,
lag and the cumulative tick-to-window latency histogram of the running process.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from marketlake.streaming.runtime.stats import LATENCY_BUCKETS_S, ProcessStats

STATUS_SUFFIX = ".status.json"


def status_path(home: Path, group: str) -> Path:
    """The status file of consumer group ``group`` under ``home``."""
    return home / "stream" / f"{group}{STATUS_SUFFIX}"


def write_status(path: Path, group: str, stats: ProcessStats) -> None:
    """Replace the status file at ``path`` with the figures of ``stats``."""
    record = {
        "group": group,
        "pid": os.getpid(),
        "updated_at": time.time(),
        "ticks": stats.ticks,
        "ticks_per_s": stats.rate,
        "lag": stats.lag,
        "late": stats.late,
        "quarantined": stats.quarantined,
        "latency_buckets_s": list(LATENCY_BUCKETS_S),
        "latency_counts": list(stats.latency_counts),
        "latency_sum_s": stats.latency_sum_us / 1e6,
        "latency_count": stats.latency_count,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(record), encoding="utf-8")
    temporary.replace(path)


def read_statuses(home: Path) -> list[dict[str, Any]]:
    """The status records of every processor that left one under ``home`` (unreadable ones
    are left out)."""
    folder = home / "stream"
    records = []
    for path in sorted(folder.glob(f"*{STATUS_SUFFIX}")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("group"), str):
            records.append(record)
    return records
