"""Process memory readings for the status endpoint."""

from __future__ import annotations

import numpy as np

from edge_server.runtime import heap_in_use_bytes, python_blocks, rss_mb


def test_heap_in_use_follows_malloc_and_free() -> None:
    before = heap_in_use_bytes()
    assert before is not None  # glibc >= 2.33 on this image (Debian 12: 2.36)
    x = np.ones(64 * 2**20 // 8)  # 64 MiB through malloc (numpy's data allocator)
    held = heap_in_use_bytes()
    assert held is not None and held - before >= 63 * 2**20
    del x
    after = heap_in_use_bytes()
    assert after is not None and after - before < 2**20


def test_python_blocks_count_small_objects() -> None:
    before = python_blocks()
    objs = [str(i) * 3 for i in range(10_000)]
    assert python_blocks() - before >= 10_000
    del objs
    assert python_blocks() - before < 1000


def test_rss_is_positive() -> None:
    assert rss_mb() > 10.0
