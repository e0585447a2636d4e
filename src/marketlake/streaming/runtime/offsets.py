"""Processor checkpoints stored together with the bus offsets they cover.

A checkpoint is one object in the lake, ``_stream/<group>/checkpoint.bin``, replaced
atomically: a header line, the JSON metadata (consumer group, topics, per-partition offsets,
counts) and the processor's :meth:`~marketlake.streaming.processor.StreamProcessor.snapshot`.
The offsets are the positions *after* the last message the state includes, so a restarted
processor restores the state and skips every message below them.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from marketlake.errors import TerminalError

if TYPE_CHECKING:
    from marketlake.lake.storage import LakeStorage

MAGIC = b"MLSTREAMCKPT1\n"
_FORMAT = 1

Positions = dict[tuple[str, int], int]


def positions_to_json(positions: Positions) -> list[list[Any]]:
    """``positions`` as sorted ``[topic, partition, offset]`` triples."""
    return [[topic, partition, offset] for (topic, partition), offset in sorted(positions.items())]


def positions_from_json(rows: list[list[Any]]) -> Positions:
    """The inverse of :func:`positions_to_json`."""
    return {(str(topic), int(partition)): int(offset) for topic, partition, offset in rows}


@dataclass
class Checkpoint:
    """The processor state of a consumer group and the offsets that state covers."""

    group: str
    positions: Positions = field(default_factory=dict)
    state: bytes | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def covers(self, topic: str, partition: int, offset: int) -> bool:
        """True when the message at ``offset`` is already included in the state."""
        return offset < self.positions.get((topic, partition), 0)

    def encode(self) -> bytes:
        """The checkpoint as bytes."""
        meta = {
            "format": _FORMAT,
            "group": self.group,
            "positions": positions_to_json(self.positions),
            "counts": self.counts,
            "has_state": self.state is not None,
        }
        header = json.dumps(meta, sort_keys=True).encode()
        return MAGIC + struct.pack("<I", len(header)) + header + (self.state or b"")

    @classmethod
    def decode(cls, data: bytes) -> Checkpoint:
        """Read bytes written by :meth:`encode`; TerminalError when they are not a checkpoint."""
        if not data.startswith(MAGIC):
            raise TerminalError("not a stream checkpoint (bad header)")
        try:
            (size,) = struct.unpack_from("<I", data, len(MAGIC))
            start = len(MAGIC) + 4
            meta = json.loads(data[start : start + size])
        except (struct.error, ValueError) as exc:
            raise TerminalError(f"stream checkpoint is corrupt: {exc}") from exc
        if meta.get("format") != _FORMAT:
            raise TerminalError(
                f"stream checkpoint format {meta.get('format')!r} is not supported "
                f"(this version reads format {_FORMAT})"
            )
        state = data[start + size :] if meta.get("has_state") else None
        return cls(
            group=str(meta["group"]),
            positions=positions_from_json(meta["positions"]),
            state=state,
            counts={str(k): int(v) for k, v in meta.get("counts", {}).items()},
        )


class CheckpointStore:
    """Reads and atomically replaces the checkpoint of one consumer group in the lake."""

    def __init__(self, storage: LakeStorage, group: str) -> None:
        self.storage = storage
        self.group = group
        self.relpath = f"_stream/{group}/checkpoint.bin"

    def load(self) -> Checkpoint:
        """The stored checkpoint, or an empty one (no state, no offsets) when none exists."""
        if not self.storage.exists(self.relpath):
            return Checkpoint(self.group)
        checkpoint = Checkpoint.decode(self.storage.read_bytes(self.relpath))
        if checkpoint.group != self.group:
            raise TerminalError(
                f"checkpoint at {self.relpath} belongs to group {checkpoint.group!r}, "
                f"not {self.group!r}"
            )
        return checkpoint

    def save(self, checkpoint: Checkpoint) -> None:
        """Replace the stored checkpoint (temp file + rename locally, one PUT on S3)."""
        self.storage.write_bytes(self.relpath, checkpoint.encode())

    def clear(self) -> None:
        """Forget the stored checkpoint (the next run starts from empty state)."""
        self.storage.delete(self.relpath)
