"""Work ahead: the next item of an iterator produced on a background thread.

For a producer and a consumer that both spend their time where Python lets go of the GIL
(numpy, Arrow and Polars kernels, file reads and writes, DuckDB): on two cores the item after
the current one is made while the current one is used.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import TypeVar, cast

T = TypeVar("T")


def prefetched(items: Iterable[T], name: str = "marketlake-prefetch") -> Generator[T, None, None]:
    """The items of ``items`` in order, each next one produced on a background thread while
    the caller uses the current one.

    One item is ahead at most, so memory holds two. An error of the producer is raised here,
    at the item it failed on. Leaving the loop early (closing the iterator) waits for the item
    being produced and produces no more.
    """
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    iterator = iter(items)
    end = object()

    def produce() -> object:
        return next(iterator, end)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        ahead: deque[Future[object]] = deque([pool.submit(produce)])
        while True:
            item = ahead.popleft().result()
            if item is end:
                return
            ahead.append(pool.submit(produce))
            yield cast(T, item)
            del item
