"""What a stage reports back to the runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageResult:
    """What a stage did, for the run record and the summary."""

    rows_in: int = 0
    rows_out: int = 0
    quarantined: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
