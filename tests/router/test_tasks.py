"""cancel_and_wait: tasks that swallow a cancel still stop; tasks that never stop are given up."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis.asyncio as aioredis

from router.tasks import cancel_and_wait
from tests.redis_server import RedisServer


async def test_a_task_that_swallows_the_first_cancel_is_cancelled_again() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    t = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    assert await cancel_and_wait(t, retry_s=0.05)
    assert t.cancelled() and swallowed == 1


async def test_a_task_that_never_stops_is_abandoned_not_waited_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def deaf() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                pass

    t = asyncio.create_task(deaf())
    await asyncio.sleep(0)
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="router.tasks"):
        assert not await cancel_and_wait(t, what="deaf loop", retry_s=0.05, give_up_s=0.3)
    assert 0.3 <= time.monotonic() - t0 < 2.0
    assert "deaf loop did not stop in 0.3 s" in caplog.text
    release.set()
    t.cancel()
    await asyncio.wait({t})


async def test_none_and_finished_tasks_and_a_task_error(caplog: pytest.LogCaptureFixture) -> None:
    async def boom() -> None:
        raise ValueError("bad")

    t = asyncio.create_task(boom())
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="router.tasks"):
        assert await cancel_and_wait(None, t, what="boom")
    assert "boom ended with ValueError('bad')" in caplog.text


async def test_loops_of_redis_commands_stop_every_time(redis_server: RedisServer) -> None:
    """A loop of HMGETs (redis-py writes each under asyncio.wait_for) cancelled at 0-6 loop
    turns after it starts: a single cancel is often swallowed on 3.11, cancel_and_wait always
    ends it, well before its next 30 s sleep would."""
    r = aioredis.from_url(redis_server.url, socket_timeout=2.0)
    once_lost = 0
    try:
        for i in range(60):

            async def loop() -> None:
                while True:
                    await r.hmget("k", "a", "b")
                    await asyncio.sleep(30)

            t = asyncio.create_task(loop())
            for _ in range(i % 7):
                await asyncio.sleep(0)
            t.cancel()
            done, _ = await asyncio.wait({t}, timeout=0.05)
            once_lost += not done
            t0 = time.monotonic()
            assert await cancel_and_wait(t, retry_s=0.05, give_up_s=5.0)
            assert time.monotonic() - t0 < 2.0
    finally:
        await r.aclose()
    print(f"a single cancel was lost in {once_lost} of 60 loops")
