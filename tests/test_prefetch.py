"""Work ahead: items in order, producer errors at their item, no work after an early stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from marketlake.prefetch import prefetched


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
