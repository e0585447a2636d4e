"""The request budget: per-minute waits, the daily limit and thread safety."""

from __future__ import annotations

import threading

import pytest

from marketlake.errors import MarketlakeError
from marketlake.sources.budget import BudgetExhaustedError, RequestBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_budget_waits_per_minute_and_stops_per_day() -> None:
    clock = FakeClock()
    budget = RequestBudget(2, 5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        budget.acquire()
    assert clock.slept == [60.0, 60.0]
    with pytest.raises(BudgetExhaustedError, match="daily request budget of 5"):
        budget.acquire()
    clock.now += 86_400
    budget.acquire()
    assert budget.used_today == 1


def test_budget_is_thread_safe() -> None:
    clock = FakeClock()
    budget = RequestBudget(1000, 50, clock=clock, sleep=clock.sleep)
    granted: list[int] = []
    refused: list[MarketlakeError] = []

    def worker() -> None:
        for _ in range(10):
            try:
                budget.acquire()
                granted.append(1)
            except BudgetExhaustedError as exc:
                refused.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 50 and len(refused) == 30
