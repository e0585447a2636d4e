"""Work ahead: items in order, producer errors at their item, no work after an early stop;
independent jobs made several at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial

import pytest

from marketlake.prefetch import made_ahead, prefetched


def test_items_come_in_order_and_are_made_on_another_thread() -> None:
    makers: set[int] = set()

    def items() -> Iterator[int]:
        for i in range(50):
            makers.add(threading.get_ident())
            yield i

    assert list(prefetched(items())) == list(range(50))
    assert len(makers) == 1
    assert threading.get_ident() not in makers


def test_an_empty_source_gives_nothing() -> None:
    assert list(prefetched([])) == []


def test_a_producer_error_is_raised_at_its_item() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("third item broken")

    got = []
    with pytest.raises(ValueError, match="third item broken"):
        for item in prefetched(items()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_produces_at_most_one_item_more() -> None:
    made: list[int] = []

    def items() -> Iterator[int]:
        for i in range(100):
            made.append(i)
            yield i

    ahead = prefetched(items())
    assert next(ahead) == 0
    assert next(ahead) == 1
    ahead.close()
    assert made == [0, 1, 2]


def test_jobs_come_in_order_and_two_are_made_at_once() -> None:
    # every pair of jobs meets at a barrier: one worker alone would wait there forever
    meet = threading.Barrier(2, timeout=10)
    makers: set[int] = set()

    def job(i: int) -> int:
        makers.add(threading.get_ident())
        meet.wait()
        return i

    assert list(made_ahead(partial(job, i) for i in range(20))) == list(range(20))
    assert len(makers) == 2 and threading.get_ident() not in makers


def test_a_job_error_is_raised_at_its_result() -> None:
    def job(i: int) -> int:
        if i == 2:
            raise ValueError("third job broken")
        return i

    got = []
    with pytest.raises(ValueError, match="third job broken"):
        for item in made_ahead(partial(job, i) for i in range(10)):
            got.append(item)
    assert got == [0, 1]


def test_stopping_early_starts_no_more_jobs() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def job(i: int) -> int:
        with lock:
            started.append(i)
        return i

    jobs: list[Callable[[], int]] = [partial(job, i) for i in range(100)]
    ahead = made_ahead(jobs, workers=2)
    assert next(ahead) == 0
    ahead.close()
    # the first result and at most the two jobs submitted behind it
    assert sorted(started) == list(range(len(started))) and len(started) <= 3
