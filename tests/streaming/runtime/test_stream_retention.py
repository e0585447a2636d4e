"""The stream's bus does not grow forever: topic retention from the settings, and
``marketlake stream trim``."""

from __future__ import annotations

from pathlib import Path

from pipeline.cli import marketlake
from streaming.runtime.stream_checks import SIM_ARGS, lake


def _topic_bytes(home: Path, topic: str = "ticks") -> int:
    return sum(path.stat().st_size for path in (home / "bus" / "topics" / topic).glob("*/*.log"))


def _produce(home: Path, count: int, env: dict[str, str] | None = None, paced: bool = True) -> None:
    """``count`` sim ticks; ``paced``: at 20,000 a second, so in many small messages (how many
    depends on the machine's speed), else as fast as possible, in messages that do not."""
    rate = ("--rate", "20000") if paced else ()
    proc = marketlake(
        "stream", "produce", "--home", str(home), "--count", str(count), "--event-rate", "4",
        *rate, "--quiet", *SIM_ARGS, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_retention_setting_caps_the_ticks_topic(home: Path, tmp_path: Path) -> None:
    capped = {"MARKETLAKE_STREAM__RETENTION_BYTES": "400000"}
    _produce(home, 40_000, capped)
    free = tmp_path / "free"
    _produce(free, 40_000)
    assert _topic_bytes(free) > 1_000_000
    # each of the 4 partitions keeps its 100 kB share, plus at most the segment being
    # written (64 kB) and one flushed batch
    assert _topic_bytes(home) <= 400_000 + 4 * (2 * 64 * 1024)


def test_trim_deletes_what_the_processor_committed(home: Path) -> None:
    # Retention must not act here, or ticks never reach the lake: unpaced, the busiest partition
    # (one of the 3 symbols) stays well below its share; paced, the same ticks come in more and
    # smaller messages, the more the faster the machine, and may outgrow it
    retention = 6_000_000
    _produce(home, 40_000, {"MARKETLAKE_STREAM__RETENTION_BYTES": str(retention)}, paced=False)
    before = _topic_bytes(home)
    done = marketlake("stream", "process", "--home", str(home), "--until-caught-up", "-q")
    assert done.returncode == 0, done.stderr

    trimmed = marketlake("stream", "trim", "--home", str(home))
    assert trimmed.returncode == 0, trimmed.stderr
    assert "ticks/0: deleted " in trimmed.stdout
    assert trimmed.stdout.splitlines()[-1].endswith(" messages every group has committed")
    # what is left is at most the newest segment of each partition (a quarter of its share)
    assert _topic_bytes(home) <= 4 * (retention // 4 // 4 + 64 * 1024) < before
    again = marketlake("stream", "process", "--home", str(home), "--until-caught-up")
    assert again.returncode == 0, again.stderr
    assert "processed 0 ticks" in again.stdout
    assert lake(home).read("curated/ticks").num_rows == 40_000
