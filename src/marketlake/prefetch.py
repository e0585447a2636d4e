"""Work ahead: the next items of a sequence made on background threads.

For a producer and a consumer that both spend their time where Python lets go of the GIL
(numpy, Arrow and Polars kernels, file reads and writes, DuckDB): on two cores the item after
the current one is made while the current one is used. :func:`prefetched` takes one iterator
(its items are made one after the other); :func:`made_ahead` takes independent jobs, several
made at once.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
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


def made_ahead(
    jobs: Iterable[Callable[[], T]], workers: int = 2, name: str = "marketlake-ahead"
) -> Generator[T, None, None]:
    """The results of ``jobs`` (independent calls) in order, each made on one of ``workers``
    background threads while the caller uses the results before it.

    ``workers`` jobs are ahead at most, so memory holds ``workers + 1`` results. An error of a
    job is raised here, at its result. Leaving the loop early (closing the iterator) waits
    for the jobs running and starts no more.
    """
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    ahead = max(workers, 1)
    pool = ThreadPoolExecutor(max_workers=ahead, thread_name_prefix=name)
    try:
        pending: deque[Future[T]] = deque()
        for job in jobs:
            pending.append(pool.submit(job))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
