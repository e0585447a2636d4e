"""CPU priority of the stream sink's lake writes.

The sink writer writes a sealed batch every commit interval while the processing thread
goes on. Ticks wait in the bus only for the processing thread, so on a machine with few
cores the writes should take the CPU the processing thread leaves over, not compete with
it: the writer thread, and the worker threads the lake library (delta-rs) runs its writes
on, get a lower priority (a higher nice value). At 10k ticks/s on 2 cores this brought the
p99 tick-to-window latency from a median of 78 ms to 47 ms (``docs/decisions.md``).

Linux only (where a thread's priority can be set apart from its process's); elsewhere, and
where the system refuses, the threads keep their priority.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

WRITER_NICENESS = 10
"""The nice value of the sink writer and of the lake library's worker threads."""
_LAKE_WORKERS = ("tokio-",)  # name prefixes of delta-rs's runtime threads
_TASKS = Path("/proc/self/task")


def lake_worker_threads() -> list[int]:
    """Native ids of the lake library's worker threads in this process (Linux only)."""
    workers: list[int] = []
    if not _TASKS.is_dir():
        return workers
    for task in _TASKS.iterdir():
        try:
            name = (task / "comm").read_text().strip()
        except OSError:  # the thread ended
            continue
        if name.startswith(_LAKE_WORKERS):
            workers.append(int(task.name))
    return workers


def lower_write_priority(niceness: int = WRITER_NICENESS) -> list[int]:
    """Give the calling thread and the lake library's worker threads at least ``niceness``;
    return the native ids of the threads whose priority was lowered."""
    if not sys.platform.startswith("linux"):
        return []
    lowered: list[int] = []
    for tid in {threading.get_native_id(), *lake_worker_threads()}:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
                lowered.append(tid)
        except OSError:  # the thread ended, or the system refuses
            continue
    return lowered
