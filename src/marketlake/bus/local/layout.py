"""Where the local log keeps its topics, partitions and consumer groups.

Layout under the root folder::

    topics/<topic>/topic.json                      {"partitions": N, "retention": {...}}
    topics/<topic>/<partition>/<base>.log|.idx     segments (see segments.py, records.py)
    groups/<group>/members/<id>.member             live consumers (held with flock)
    groups/<group>/locks/<topic>/<partition>.lock  partition ownership (held with flock)
    groups/<group>/offsets/<topic>/<partition>.json committed offsets

Producers and consumers both find their files through a :class:`LogLayout`, so neither needs
the bus.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from marketlake.bus.base import Retention, validate_name
from marketlake.errors import ConfigError


class LogLayout:
    """The folders of a local log under ``root``, and its topics' partition counts.

    ``partitions`` is the partition count of topics created without one (including topics
    created on first use by a producer or consumer).
    """

    def __init__(self, root: Path, partitions: int = 4) -> None:
        self.root = Path(root)
        self.partitions = partitions
        self._partition_counts: dict[str, int] = {}
        (self.root / "topics").mkdir(parents=True, exist_ok=True)
        (self.root / "groups").mkdir(parents=True, exist_ok=True)

    def create_topic(
        self, topic: str, partitions: int | None = None, retention: Retention | None = None
    ) -> None:
        """Create ``topic`` with ``partitions`` (default: the layout's); an existing one keeps
        its partitions. ``retention``, when given, is stored as the topic's retention."""
        count = self.partitions if partitions is None else partitions
        if count < 1:
            raise ConfigError(f"topic {topic!r} needs at least 1 partition, got {count}")
        folder = self.topic_folder(topic)
        meta = folder / "topic.json"
        if not meta.exists():
            folder.mkdir(parents=True, exist_ok=True)
            temp = _write_temp(folder, {"partitions": count})
            try:
                os.link(temp, meta)
            except FileExistsError:
                pass
            finally:
                temp.unlink()
            for partition in range(self.partition_count(topic)):
                (folder / str(partition)).mkdir(exist_ok=True)
        if retention is not None and self.retention(topic) != retention:
            data = json.loads(meta.read_text())
            data["retention"] = {
                "max_bytes": retention.max_bytes,
                "max_age_ms": retention.max_age_ms,
            }
            os.replace(_write_temp(folder, data), meta)

    def retention(self, topic: str) -> Retention | None:
        """The retention stored for ``topic`` (None: the bus's)."""
        meta = self.topic_folder(topic) / "topic.json"
        try:
            stored = json.loads(meta.read_text()).get("retention")
        except FileNotFoundError:
            return None
        return None if stored is None else Retention(**stored)

    def partition_count(self, topic: str) -> int:
        """The number of partitions of ``topic``, creating the topic if it does not exist."""
        count = self._partition_counts.get(topic)
        if count is None:
            meta = self.topic_folder(topic) / "topic.json"
            if not meta.exists():
                self.create_topic(topic)
            count = int(json.loads(meta.read_text())["partitions"])
            self._partition_counts[topic] = count
        return count

    def topics(self) -> list[str]:
        """The names of the topics in the log, sorted."""
        return sorted(os.listdir(self.root / "topics"))

    def topic_folder(self, topic: str) -> Path:
        """The folder of ``topic``."""
        return self.root / "topics" / validate_name(topic)

    def partition_folder(self, topic: str, partition: int) -> Path:
        """The folder of one partition of ``topic``."""
        return self.topic_folder(topic) / str(partition)

    def group_folder(self, group: str) -> Path:
        """The folder of consumer group ``group``."""
        return self.root / "groups" / validate_name(group, "group")

    def groups(self) -> list[str]:
        """The names of the consumer groups that ever joined, sorted."""
        return sorted(os.listdir(self.root / "groups"))


def _write_temp(folder: Path, data: dict[str, object]) -> Path:
    """A durable temporary file in ``folder`` holding ``data`` as JSON, to link or rename."""
    temp = folder / f".topic.{uuid.uuid4().hex}.tmp"
    temp.write_text(json.dumps(data))
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return temp
