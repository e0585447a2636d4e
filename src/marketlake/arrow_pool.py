"""Arrow's memory pool for marketlake's batch and stream processes: jemalloc, where pyarrow
has it.

pyarrow allocates from mimalloc by default, which hands freed pages back to the system within
milliseconds. A batch run allocates and frees hundreds of megabytes per bucket, so the pages
came back as fresh page faults, each zeroed by the kernel: with mimalloc, 500 symbols x 10
years spent 6-9 s of system time against 3.6-5.4 s with jemalloc, whose freed pages are kept
for a second before they are returned (same peak memory; figures in ``docs/decisions.md``).
``marketlake run`` and the ``stream`` commands use it; so do the benchmarks that run the
pipelines in process, as those commands would.
"""

from __future__ import annotations

import contextlib


def prefer_jemalloc() -> str:
    """Make jemalloc pyarrow's default memory pool when pyarrow was built with it; return the
    name of the pool in use (a pyarrow without jemalloc keeps its default)."""
    import pyarrow as pa

    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    return str(pa.default_memory_pool().backend_name)
