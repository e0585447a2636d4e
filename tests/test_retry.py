"""The one retry helper: attempts, deadline, backoff, which errors are retried, hooks."""

from __future__ import annotations

import pytest

from marketlake.errors import TerminalError, TransientError
from marketlake.retry import RetriesSpentError, Retry, RetryPolicy, call_with_retry


class Flaky:
    """Fails with ``error`` ``failures`` times, then returns ``"done"``."""

    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.failures = failures
        self.error = error or TransientError("busy")
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


def test_transient_errors_are_retried_with_exponential_capped_backoff() -> None:
    waits: list[float] = []
    seen: list[Retry] = []
    policy = RetryPolicy(max_attempts=5, backoff_s=1.0, max_backoff_s=3.0)
    operation = Flaky(4)
    result = call_with_retry(policy, operation, sleep=waits.append, on_retry=seen.append)
    assert result == "done" and operation.calls == 5
    assert waits == [1.0, 2.0, 3.0, 3.0]
    assert [(r.attempt, r.delay_s) for r in seen] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 3.0)]


def test_the_last_error_names_the_attempts_and_keeps_its_cause() -> None:
    operation = Flaky(10)
    with pytest.raises(TransientError, match=r"busy \(gave up after 3 attempts\)") as info:
        call_with_retry(RetryPolicy(max_attempts=3), operation, sleep=lambda s: None)
    assert operation.calls == 3
    assert info.value.__cause__ is operation.error


def test_one_attempt_raises_the_error_itself() -> None:
    operation = Flaky(1)
    with pytest.raises(TransientError) as info:
        call_with_retry(RetryPolicy(max_attempts=1), operation, sleep=lambda s: None)
    assert info.value is operation.error


def test_other_errors_propagate_at_once() -> None:
    operation = Flaky(5, TerminalError("bad input"))
    with pytest.raises(TerminalError, match="bad input"):
        call_with_retry(RetryPolicy(max_attempts=5), operation, sleep=lambda s: None)
    assert operation.calls == 1


def test_the_policy_chooses_which_errors_are_transient() -> None:
    policy = RetryPolicy(max_attempts=3, transient=(TimeoutError,))
    assert call_with_retry(policy, Flaky(2, TimeoutError()), sleep=lambda s: None) == "done"
    operation = Flaky(2)
    with pytest.raises(TransientError):
        call_with_retry(policy, operation, sleep=lambda s: None)
    assert operation.calls == 1


def test_a_deadline_bounds_the_retries_by_time() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    policy = RetryPolicy(max_attempts=None, deadline_s=10.0, backoff_s=3.0, multiplier=1.0)
    operation = Flaky(100)
    with pytest.raises(TransientError, match="stuck after 5"):
        call_with_retry(
            policy,
            operation,
            sleep=sleep,
            clock=lambda: now[0],
            give_up=lambda error, attempts: TransientError(f"stuck after {attempts}"),
        )
    assert operation.calls == 5  # failures at 0, 3, 6 and 9 s are retried, the one at 12 s is not


def test_give_up_may_raise_the_last_error_unchanged() -> None:
    operation = Flaky(3)
    with pytest.raises(TransientError) as info:
        call_with_retry(
            RetryPolicy(max_attempts=2), operation, sleep=lambda s: None, give_up=lambda e, n: e
        )
    assert info.value is operation.error


def test_retries_do_not_multiply() -> None:
    inner = Flaky(10)
    waits: list[float] = []

    def provider_call() -> str:
        return call_with_retry(
            RetryPolicy(max_attempts=4),
            inner,
            sleep=waits.append,
            give_up=lambda error, n: RetriesSpentError(f"{error} (gave up after {n} attempts)"),
        )

    with pytest.raises(RetriesSpentError, match="gave up after 4 attempts"):
        call_with_retry(RetryPolicy(max_attempts=4), provider_call, sleep=waits.append)
    assert inner.calls == 4  # not 16: the outer loop does not start the inner one again
    assert waits == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    "arguments",
    [
        {"max_attempts": 0},
        {"max_attempts": None},
        {"backoff_s": -1.0},
        {"multiplier": 0.5},
    ],
)
def test_invalid_policies_are_refused(arguments: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**arguments)  # type: ignore[arg-type]
