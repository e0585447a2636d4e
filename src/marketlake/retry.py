"""One retry helper: an operation failing with a transient error is tried again, with backoff.

Every loop that retries errors goes through :func:`call_with_retry` with a :class:`RetryPolicy`:
lake operations, provider HTTP calls and throttled provider answers, the tick producer waiting
for its broker, and the runner's stages. Loops that wait for something other than an error to
clear (a consumer polling for messages, a request budget's minute window) are not retries and
do not use it.

Retries do not multiply: an operation whose own policy already waited (a provider call) ends
with a :class:`RetriesSpentError`, which an outer loop (the runner's stage retry) raises at once
instead of starting the inner retries all over again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from marketlake.errors import TransientError

T = TypeVar("T")


class RetriesSpentError(TransientError):
    """A transient failure whose retries an inner loop has spent: outer loops do not retry it.

    It may still succeed later (a new run), but not by repeating at once what was just
    repeated: a provider call that waited out its own backoff is not started over by a stage.
    """


@dataclass(frozen=True)
class RetryPolicy:
    """How often, how patiently and on which errors an operation is tried again.

    ``max_attempts`` counts the first try: 1 means no retry, ``None`` no limit but
    ``deadline_s`` (seconds since the first try after which a failure is final). The wait
    after failed attempt ``n`` is ``backoff_s * multiplier ** (n - 1)``, capped at
    ``max_backoff_s`` (``multiplier`` 1: a constant wait). Only exceptions of the
    ``transient`` types are retried; any other exception propagates at once.
    """

    max_attempts: int | None = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    multiplier: float = 2.0
    deadline_s: float | None = None
    transient: tuple[type[BaseException], ...] = (TransientError,)

    def __post_init__(self) -> None:
        if self.max_attempts is None and self.deadline_s is None:
            raise ValueError("a retry policy needs max_attempts, deadline_s or both")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("backoff_s and max_backoff_s must not be negative")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, got {self.multiplier}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_backoff_s, self.backoff_s * self.multiplier ** (attempt - 1)))

    def spent(self, attempt: int, elapsed_s: float) -> bool:
        """True when failed attempt ``attempt``, ``elapsed_s`` after the first try, is final."""
        if self.max_attempts is not None and attempt >= self.max_attempts:
            return True
        return self.deadline_s is not None and elapsed_s >= self.deadline_s


@dataclass(frozen=True)
class Retry:
    """A failed attempt about to be tried again: its number (1-based), its error, the wait."""

    attempt: int
    error: BaseException
    delay_s: float


def gave_up(error: BaseException, attempts: int) -> BaseException:
    """The default final error: ``error`` itself after one attempt, else a TransientError
    saying how many attempts were made."""
    if attempts == 1:
        return error
    return TransientError(f"{error} (gave up after {attempts} attempts)")


def call_with_retry(
    policy: RetryPolicy,
    operation: Callable[[], T],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: Callable[[Retry], None] | None = None,
    give_up: Callable[[BaseException, int], BaseException] = gave_up,
) -> T:
    """Run ``operation``; while it raises one of the policy's transient errors, wait and retry.

    ``on_retry`` is called before each wait (to log or record the retry). A
    :class:`RetriesSpentError` (an inner loop already retried it) is raised at once. Once the
    policy is spent, the error ``give_up(last_error, attempts)`` returns is raised, with the
    last error as its cause (the last error itself is raised again unchanged). ``sleep`` and
    ``clock`` are the wait and the monotonic clock; tests pass fakes.
    """
    attempt = 1
    started = clock()
    while True:
        try:
            return operation()
        except RetriesSpentError:
            raise
        except policy.transient as exc:
            if policy.spent(attempt, clock() - started):
                final = give_up(exc, attempt)
                if final is exc:
                    raise
                raise final from exc
            delay = policy.delay(attempt)
            if on_retry is not None:
                on_retry(Retry(attempt, exc, delay))
            sleep(delay)
            attempt += 1
