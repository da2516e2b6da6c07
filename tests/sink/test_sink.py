"""The forwarder and the cloud consumer in process, against two real redis-servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from edge_server.pipeline.ports import Commit
from edge_server.pipeline.records import OutRecord
from edge_server.sink.consumer import DEAD_STREAM, CloudConsumer, ConsumerConfig
from edge_server.sink.db import open_db
from edge_server.sink.service import SinkService
from edge_server.store import RedisStore
from edge_server.store.outbox import StreamRecord
from edge_server.sync.codec import aad, key_id, pack_records, seal
from edge_server.sync.forwarder import CLOUD_STREAM, Forwarder, ForwarderConfig
from router.tasks import cancel_and_wait
from tests.postgres_server import PostgresServer
from tests.redis_server import RedisServer

KEY = bytes(range(32))


@pytest.fixture
def cloud_redis() -> AsyncIterator[RedisServer]:
    s = RedisServer()
    s.start()
    yield s  # type: ignore[misc]
    s.stop()


async def _until(cond, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_edge_to_cloud_with_priorities_api_and_dead_letter(
    redis_server: RedisServer, cloud_redis: RedisServer, tmp_path: Path, backend: str
) -> None:
    pg = PostgresServer() if backend == "postgres" else None
    if pg is not None:
        pg.start()
    try:
        await _edge_to_cloud(redis_server, cloud_redis, tmp_path, pg.url if pg else "")
    finally:
        if pg is not None:
            pg.stop()


async def _edge_to_cloud(
    redis_server: RedisServer, cloud_redis: RedisServer, tmp_path: Path, db_url: str
) -> None:
    store = RedisStore(redis_server.url, node_id="e1", ttl_s=60, log_keep=8)
    fwd = Forwarder(
        store,
        ForwarderConfig(
            cloud_url=cloud_redis.url, forwarder_id="e1", spool_dir=tmp_path / "spool", key=KEY,
            batch_records=16,
        ),
    )  # fmt: skip
    db = open_db(db_url or f"sqlite:///{tmp_path / 'c.db'}")
    consumer = CloudConsumer(
        db, ConsumerConfig(redis_url=cloud_redis.url, key=KEY, claim_idle_s=0.1, block_s=0.1)
    )
    svc = SinkService(consumer, db, host="127.0.0.1", port=0)
    await svc.start()
    epoch = await store.create("sA", node_id="e1", config=b"{}")
    for seq in range(40):
        recs = (
            OutRecord("events", 1, seq, b'{"t":%d}' % seq),
            OutRecord("features", 2, seq, b'{"f":%d}' % seq),
        )
        await store.commit(
            Commit(session_id="sA", node_id="e1", epoch=epoch, seq=seq, result=b"{}", records=recs)
        )
    await store.commit(
        Commit(session_id="sA", node_id="e1", epoch=epoch, seq=39, result=b"",
               records=(OutRecord("summary", 0, 39, b'{"chunks":40}'),), final=True)
    )  # fmt: skip
    await fwd.start()
    try:
        await _until(lambda: asyncio.to_thread(lambda: db.count() == 81))
        base = f"http://127.0.0.1:{svc.port}"
        async with aiohttp.ClientSession() as http:
            page = await (
                await http.get(f"{base}/api/v1/data?session_id=sA&kind=events&limit=25")
            ).json()
            assert [i["seq"] for i in page["items"]] == list(range(25))
            assert page["items"][3]["data"] == {"t": 3} and page["items"][0]["node_id"] == "e1"
            nxt = await (
                await http.get(
                    f"{base}/api/v1/data?session_id=sA&kind=events&cursor={page['next_cursor']}"
                )
            ).json()
            assert [i["seq"] for i in nxt["items"]] == list(range(25, 40))
            assert nxt["next_cursor"] is None
            summ = await (await http.get(f"{base}/api/v1/data?kind=summary")).json()
            assert summ["items"][0]["data"] == {"chunks": 40}
            empty = await (await http.get(f"{base}/api/v1/data?node_id=other")).json()
            assert empty["items"] == []
            for bad, field in (
                ("limit=0", "limit"),
                ("limit=abc", "limit"),
                ("cursor=-1", "cursor"),
            ):
                r = await http.get(f"{base}/api/v1/data?{bad}")
                assert r.status == 400 and field in (await r.json())["message"]
            metrics = await (await http.get(f"{base}/metrics")).text()
            assert "sink_records_new_total 81.0" in metrics
        assert fwd.spool.sent() == [] or fwd.watermark >= 1
        # a tampered batch: retried, then dead-lettered after 5 deliveries, nothing stored
        r = aioredis.from_url(cloud_redis.url)
        recs = [StreamRecord("sX", 1, "events", 1, "e9", 1, b"{}")]
        codec, body, nonce = seal(pack_records(recs), key=KEY, associated=aad("e9", 1, 1, 1))
        tampered = body[:-1] + bytes([body[-1] ^ 1])
        fields = {"fwd": "e9", "bseq": 1, "prio": 1, "n": 1, "codec": codec}
        await r.xadd(CLOUD_STREAM, {**fields, "kid": key_id(KEY), "nonce": nonce, "body": tampered})
        await _until(lambda: r.xlen(DEAD_STREAM))
        dead = (await r.xrange(DEAD_STREAM))[0][1]
        assert int(dead[b"deliveries"]) == 5 and b"altered" in dead[b"error"]
        assert consumer.dead_lettered == 1 and consumer.failures == 5
        assert db.count() == 81
        await r.aclose()
    finally:
        await fwd.stop()
        await svc.stop()
        await store.close()


async def test_summaries_and_notes_go_before_features(
    redis_server: RedisServer, cloud_redis: RedisServer, tmp_path: Path
) -> None:
    """A backlog (cloud unreachable) drains most important first."""
    store = RedisStore(redis_server.url, node_id="e2", ttl_s=60, log_keep=8)
    fwd = Forwarder(
        store,
        ForwarderConfig(cloud_url=cloud_redis.url, forwarder_id="e2", spool_dir=tmp_path / "sp",
                        batch_records=10, max_inflight=1000),
    )  # fmt: skip
    cloud_redis.kill()
    await fwd.start()
    epoch = await store.create("sB", node_id="e2", config=b"{}")
    for seq in range(30):
        rec = (
            (OutRecord("features", 2, seq, b"{}"),)
            if seq < 20
            else (OutRecord("events", 1, seq, b"{}"),)
        )
        await store.commit(
            Commit(session_id="sB", node_id="e2", epoch=epoch, seq=seq, result=b"{}", records=rec)
        )
    await _until(lambda: asyncio.sleep(0, result=fwd.records_spooled == 30))
    cloud_redis.start()
    r = aioredis.from_url(cloud_redis.url)
    try:
        await _until(lambda: _len(r, 3))
        order = [int(f[b"prio"]) for _, f in await r.xrange(CLOUD_STREAM)]
        assert order == sorted(order) and order[0] == 1
    finally:
        await r.aclose()
        await fwd.stop()
        await store.close()


async def _len(r: aioredis.Redis, n: int) -> bool:
    return int(await r.xlen(CLOUD_STREAM)) >= n


async def test_batches_lost_by_the_cloud_are_detected_and_refilled_from_the_spool(
    redis_server: RedisServer, cloud_redis: RedisServer, tmp_path: Path
) -> None:
    """The cloud Redis restarts empty while batches wait unconsumed in it: the consumer sees
    the batch-seq gap and the forwarder resends those batches from its spool."""
    store = RedisStore(redis_server.url, node_id="e3", ttl_s=60, log_keep=8)
    fwd = Forwarder(
        store,
        ForwarderConfig(cloud_url=cloud_redis.url, forwarder_id="e3", spool_dir=tmp_path / "sp",
                        batch_records=5, resend_after_s=0.5, backoff_initial_s=0.05),
    )  # fmt: skip
    await fwd.start()
    epoch = await store.create("sC", node_id="e3", config=b"{}")

    async def emit(seqs: range) -> None:
        for seq in seqs:
            rec = (OutRecord("events", 1, seq, b'{"s":%d}' % seq),)
            await store.commit(
                Commit(
                    session_id="sC", node_id="e3", epoch=epoch, seq=seq, result=b"{}", records=rec
                )
            )

    r = aioredis.from_url(cloud_redis.url)
    await emit(range(0, 20))
    await _until(lambda: _len(r, 4))  # 4 batches sent, nobody consuming
    await r.aclose()
    cloud_redis.restart()  # no persistence: the 4 batches are gone
    await emit(range(20, 40))
    db = open_db(f"sqlite:///{tmp_path / 'c.db'}")
    consumer = CloudConsumer(db, ConsumerConfig(redis_url=cloud_redis.url, block_s=0.1))
    task = asyncio.create_task(consumer.run())
    try:
        await _until(lambda: asyncio.to_thread(lambda: db.count() == 40), 30)
        assert consumer.gaps_detected >= 4
        assert fwd.batches_resent >= 4
        assert db.gaps("sC")["missing"] == 0
        await _until(lambda: asyncio.sleep(0, result=fwd.spool.records_held() == 0))
    finally:
        await cancel_and_wait(task, what="consumer")
        await fwd.stop()
        await consumer.close()
        await store.close()
        db.close()
