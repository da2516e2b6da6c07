"""Run CPU work inline when it is short, on a bounded thread pool when it could block the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class CpuOffloader:
    """Decides per call whether work runs on the event loop or a worker thread.

    A typical chunk (1024 samples) costs ~50-100 us of numpy work: cheaper inline than the
    ~50 us hand-off to a thread. Chunks over ``inline_max_samples`` (up to 0.5 s of audio)
    go to the pool so that one large chunk cannot stall every other session.
    The pool has ``max_workers`` threads; its queue is bounded by the number of sessions,
    since each session awaits its own chunk before reading the next.
    """

    def __init__(self, *, inline_max_samples: int = 4096, max_workers: int = 2) -> None:
        self.inline_max_samples = inline_max_samples
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="edge-cpu")

    async def run(self, n_samples: int, fn: Callable[[], T]) -> T:
        if n_samples <= self.inline_max_samples:
            return fn()
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def run_in_pool(self, fn: Callable[[], T]) -> T:
        """Always on the pool (work that may block, e.g. waiting for model runs)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
