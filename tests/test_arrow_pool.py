"""Arrow's memory pool: jemalloc once preferred, where this pyarrow has it."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from marketlake.arrow_pool import prefer_jemalloc


@pytest.fixture
def default_pool() -> Iterator[None]:
    before = pa.default_memory_pool()
    yield
    pa.set_memory_pool(before)


def _has_jemalloc() -> bool:
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        return False
    return True


@pytest.mark.usefixtures("default_pool")
def test_new_arrow_buffers_come_from_jemalloc() -> None:
    if not _has_jemalloc():
        pytest.fail("this pyarrow has no jemalloc pool; the Linux wheels marketlake uses do")
    pa.set_memory_pool(pa.system_memory_pool())

    assert prefer_jemalloc() == "jemalloc"
    jemalloc = pa.jemalloc_memory_pool()
    before = jemalloc.bytes_allocated()
    values = pa.array(range(100_000), pa.int64())
    assert jemalloc.bytes_allocated() - before >= values.nbytes
    assert pa.default_memory_pool().backend_name == "jemalloc"
