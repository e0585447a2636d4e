"""Retry with exponential backoff for lake operations that fail with a TransientError."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from marketlake.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried.

    ``max_attempts`` counts the first try: 1 means no retry. The wait before attempt ``n + 1``
    is ``backoff_s * 2 ** (n - 1)``, capped at ``max_backoff_s``.
    """

    max_attempts: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("backoff_s and max_backoff_s must not be negative")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))


def call_with_retry(
    policy: RetryPolicy, operation: Callable[[], T], sleep: Callable[[float], None] = time.sleep
) -> T:
    """Run ``operation``; retry it while it raises TransientError, up to the policy's limit.

    The last TransientError is re-raised with the number of attempts added to its message.
    Any other exception propagates at once.
    """
    attempt = 1
    while True:
        try:
            return operation()
        except TransientError as exc:
            if attempt >= policy.max_attempts:
                if policy.max_attempts > 1:
                    raise TransientError(f"{exc} (gave up after {attempt} attempts)") from (
                        exc.__cause__ or exc
                    )
                raise
            sleep(policy.delay(attempt))
            attempt += 1
