"""The stream sink writes at a lower CPU priority than the thread that processes ticks."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
from tests.streaming.runtime.test_stream_sink import batch, new_sink, ticks

from marketlake.streaming.runtime.priority import WRITER_NICENESS, lake_worker_threads
from marketlake.streaming.runtime.sink import SinkWriter

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="thread priorities are set on Linux only"
)


def test_the_writer_and_the_lake_workers_run_below_the_processing_thread(
    tmp_path: Path,
) -> None:
    tables, sink = new_sink(tmp_path)
    writer = SinkWriter(sink)
    writer.start()
    try:
        writer.submit(batch({0: 1}, (ticks("A", 0, 10), False)))
        writer.drain()
        assert writer.native_id is not None
        assert os.getpriority(os.PRIO_PROCESS, writer.native_id) >= WRITER_NICENESS
        workers = lake_worker_threads()
        assert workers, "the lake library ran no worker thread"
        assert all(os.getpriority(os.PRIO_PROCESS, t) >= WRITER_NICENESS for t in workers)
        here = threading.get_native_id()
        assert os.getpriority(os.PRIO_PROCESS, here) < WRITER_NICENESS
    finally:
        writer.stop()
    assert tables.read("curated/ticks").num_rows == 10
