"""A request budget per minute and per day, shared by every request of a run (thread-safe)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from marketlake.errors import TerminalError

MINUTE_S = 60.0
DAY_S = 86_400.0


class BudgetExhaustedError(TerminalError):
    """The daily request budget is spent; retrying today cannot help."""


class RequestBudget:
    """At most ``per_minute`` requests in any 60 s window and ``per_day`` per UTC day.

    :meth:`acquire` waits (``sleep``) while the minute window is full and raises
    BudgetExhaustedError when the day's budget is spent. ``clock`` returns seconds since the
    epoch (UTC); tests pass a fake clock and a ``sleep`` that advances it.
    """

    def __init__(
        self,
        per_minute: int,
        per_day: int,
        *,
        provider: str = "provider",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute < 1 or per_day < 1:
            raise ValueError(
                f"request budget must allow at least 1 request per minute and per day, got "
                f"{per_minute}/min and {per_day}/day"
            )
        self.per_minute = per_minute
        self.per_day = per_day
        self.provider = provider
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._recent: deque[float] = deque()
        self._day = -1
        self._used_today = 0

    def __repr__(self) -> str:
        return (
            f"RequestBudget(provider={self.provider!r}, per_minute={self.per_minute}, "
            f"per_day={self.per_day}, used_today={self.used_today})"
        )

    @property
    def used_today(self) -> int:
        """Requests made so far in the current UTC day."""
        with self._lock:
            self._roll_day(self._clock())
            return self._used_today

    @property
    def remaining_today(self) -> int:
        """Requests still allowed in the current UTC day."""
        return self.per_day - self.used_today

    def check(self, requests: int, what: str = "this run") -> None:
        """Raise BudgetExhaustedError up front when ``requests`` exceed what is left today."""
        left = self.remaining_today
        if requests > left:
            raise BudgetExhaustedError(
                f"{self.provider}: {what} needs {requests} requests but only {left} of "
                f"{self.per_day} are left today; split the backfill over several days or raise "
                f"the daily limit in settings"
            )

    def acquire(self) -> None:
        """Take one request from the budget, waiting for the minute window when it is full."""
        while True:
            with self._lock:
                now = self._clock()
                self._roll_day(now)
                if self._used_today >= self.per_day:
                    raise BudgetExhaustedError(
                        f"{self.provider}: daily request budget of {self.per_day} is spent; "
                        f"allowed again after 00:00 UTC"
                    )
                while self._recent and now - self._recent[0] >= MINUTE_S:
                    self._recent.popleft()
                if len(self._recent) < self.per_minute:
                    self._recent.append(now)
                    self._used_today += 1
                    return
                wait = MINUTE_S - (now - self._recent[0])
            self._sleep(max(wait, 0.0))

    def _roll_day(self, now: float) -> None:
        day = int(now // DAY_S)
        if day != self._day:
            self._day = day
            self._used_today = 0
