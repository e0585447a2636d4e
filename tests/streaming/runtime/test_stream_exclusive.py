"""One stream processor per group and lake: a second one stops at once, a killed one's
successor starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from tests.pipeline.test_s3_run import s3_env
from tests.services.seaweedfs import SeaweedFS

from marketlake.bus.base import Consumer
from marketlake.bus.memory import MemoryBus
from marketlake.catalogue import TICKS
from marketlake.errors import ConfigError
from marketlake.lake.storage import LakeStorage
from marketlake.lake.tables import LakeTables
from marketlake.streaming.runtime.exclusive import ProcessorLock, lock_relpath
from marketlake.streaming.runtime.options import PipelineOptions
from marketlake.streaming.runtime.pipeline import StreamPipeline
from marketlake.streaming.runtime.producer import TickProducer
from pipeline.cli import marketlake
from streaming.runtime.stream_checks import SIM_ARGS, sim_ticks


def test_a_second_lock_of_the_group_fails_naming_the_holder(tmp_path: Path) -> None:
    storage = LakeStorage.from_url(tmp_path.as_uri())
    with ProcessorLock(storage, "g"):
        with pytest.raises(ConfigError, match=f"pid {os.getpid()}"):
            ProcessorLock(storage, "g").acquire()
        with ProcessorLock(storage, "other"):  # another group runs beside it
            pass
    with ProcessorLock(storage, "g"):  # released
        pass


def test_a_second_processor_of_the_group_stops_and_a_killed_ones_successor_runs(
    home: Path,
) -> None:
    produced = marketlake(
        "stream", "produce", "--home", str(home), "--count", "2000", "--event-rate", "2",
        *SIM_ARGS,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    first = subprocess.Popen(
        [sys.executable, "-m", "marketlake", "stream", "process", "--home", str(home), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    lock = home / "lake" / lock_relpath("stream-processor")
    try:
        deadline = time.monotonic() + 120
        while first.poll() is None and time.monotonic() < deadline:
            if lock.exists() and lock.read_text().strip() == str(first.pid):
                break
            time.sleep(0.05)
        assert lock.read_text().strip() == str(first.pid)

        second = marketlake("stream", "process", "--home", str(home), "--until-caught-up")
        assert second.returncode != 0
        assert "another stream processor of group 'stream-processor'" in second.stderr
        assert f"pid {first.pid}" in second.stderr
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()

    after = marketlake("stream", "process", "--home", str(home), "--until-caught-up", "--quiet")
    assert after.returncode == 0, after.stderr


class ReadersSeen(MemoryBus):
    """The in-memory bus (a test double the package ships), noting how the pipeline reads."""

    def __init__(self) -> None:
        super().__init__()
        self.readers: list[str] = []

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        self.readers.append("member")
        return super().consumer(group, topics)

    def sole_consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        self.readers.append("sole")
        return super().consumer(group, topics)


@pytest.mark.parametrize("on_s3", [False, True])
def test_the_processor_skips_the_group_only_while_it_holds_the_lock(
    tmp_path: Path, seaweedfs: SeaweedFS, on_s3: bool
) -> None:
    """A lake on local disk: the lock is held, the processor reads as the sole consumer. A lake
    on S3 has no lock: it joins the group, which keeps a second processor off its partitions.
    Either way every tick reaches the lake once."""
    if on_s3:
        uri = f"s3://{seaweedfs.bucket}/stream-{uuid.uuid4().hex[:10]}"
        storage = LakeStorage.from_url(uri, s3_env(seaweedfs))
    else:
        storage = LakeStorage.from_url((tmp_path / "lake").as_uri())
    bus = ReadersSeen()
    options = PipelineOptions(alerts_topic=None)
    producer = TickProducer(bus, options.topic, 4)
    producer.send(sim_ticks(500, 2.0).combine_chunks().to_batches()[0])
    producer.close()
    tables = LakeTables(storage)
    stats = StreamPipeline(bus, tables, options).run(until_caught_up=True)
    assert stats.ticks == 500
    assert bus.readers == (["member"] if on_s3 else ["sole"])
    assert tables.read(TICKS).num_rows == 500
