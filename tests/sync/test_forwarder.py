"""Forwarder behaviour against real redis-servers: the bandwidth cap, stopping."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import redis.asyncio as aioredis

from edge_server.pipeline.ports import Commit
from edge_server.pipeline.records import OutRecord
from edge_server.store import RedisStore
from edge_server.sync.forwarder import CLOUD_STREAM, Forwarder, ForwarderConfig
from router.tasks import cancel_and_wait
from tests.redis_server import RedisServer


async def _send_all(edge: str, cloud: str, spool: Path, rate: int, want: int) -> tuple[float, int]:
    store = RedisStore(edge, node_id="bw", ttl_s=60, log_keep=8)
    fwd = Forwarder(
        store,
        ForwarderConfig(cloud_url=cloud, forwarder_id=f"bw{rate}", spool_dir=spool,
                        batch_records=20, bandwidth_bytes_per_s=rate),
    )  # fmt: skip
    epoch = await store.create(f"s{rate}", node_id="bw", config=b"{}")
    for seq in range(200):  # 1.6 kB of hex each (zlib halves it)
        payload = b'{"x":"%s"}' % os.urandom(800).hex().encode()
        rec = (OutRecord("events", 1, seq, payload),)
        await store.commit(
            Commit(
                session_id=f"s{rate}", node_id="bw", epoch=epoch, seq=seq, result=b"", records=rec
            )
        )
    r = aioredis.from_url(cloud)
    t0 = time.monotonic()
    await fwd.start()
    try:
        for _ in range(6000):  # 10 batches of 20 records; 60 s at most
            if int(await r.xlen(CLOUD_STREAM)) >= want:
                break
            await asyncio.sleep(0.01)
        return time.monotonic() - t0, fwd.bytes_sent
    finally:
        await r.aclose()
        await fwd.stop()
        await store.close()


async def test_bandwidth_cap_paces_the_cloud_link(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    cloud = RedisServer()
    cloud.start()
    try:
        free_s, nbytes = await _send_all(redis_server.url, cloud.url, tmp_path / "a", 0, 10)
        rate = 40_000
        capped_s, capped_bytes = await _send_all(
            redis_server.url, cloud.url, tmp_path / "b", rate, 20
        )
    finally:
        cloud.stop()
    # the first second's worth goes at once (the bucket holds one second), the rest at `rate`
    expected_s = (capped_bytes - rate) / rate
    print(f"{capped_bytes} bytes: {capped_s:.2f} s capped at {rate} B/s, {free_s:.2f} s uncapped")
    assert capped_bytes > 3 * rate
    assert capped_s >= 0.9 * expected_s
    assert free_s < capped_s / 3


async def test_stop_ends_the_loops_when_a_wake_up_races_the_cancel(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """stop() just as the sender wakes up (0-3 loop turns after its event fires): the sender
    then runs a Redis command, and redis-py on 3.11 often swallows the cancel there, so a
    single ``cancel(); await`` left stop() waiting for ever (a CI run hung on it)."""
    store = RedisStore(redis_server.url, node_id="st", ttl_s=60, log_keep=8)
    try:
        for turns in range(4):
            fwd = Forwarder(
                store,
                ForwarderConfig(cloud_url=redis_server.url, forwarder_id=f"st{turns}",
                                spool_dir=tmp_path / str(turns), poll_s=30.0),
            )  # fmt: skip
            await fwd.start()
            for _ in range(200):  # the sender's first cycle reaches the cloud, then waits
                if fwd.cloud_up:
                    break
                await asyncio.sleep(0.01)
            assert fwd.cloud_up
            await asyncio.sleep(0.05)
            fwd._kick.set()
            for _ in range(turns):
                await asyncio.sleep(0)
            stopping = asyncio.ensure_future(fwd.stop())
            done, _ = await asyncio.wait({stopping}, timeout=5.0)
            if not done:
                await cancel_and_wait(*fwd._tasks)  # free the loop for the next test
                raise AssertionError(f"stop() hung with the wake-up {turns} turns before it")
    finally:
        await store.close()
