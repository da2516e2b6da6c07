"""Both session stores behave the same (memory, and Redis against a real redis-server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from edge_server.pipeline.ports import Commit, StoreUnavailable, Superseded
from edge_server.pipeline.records import OutRecord
from edge_server.store import MemoryStore, RedisStore
from tests.redis_server import RedisServer


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[MemoryStore | RedisStore]:
    s: MemoryStore | RedisStore
    if request.param == "memory":
        s = MemoryStore(ttl_s=60, log_keep=4, outbox_enabled=True)
    else:
        s = RedisStore(redis_server.url, node_id="n1", ttl_s=60, log_keep=4, commit_timeout_s=2)
    try:
        yield s
    finally:
        await s.close()


def _commit(seq: int, epoch: int, *, snap: bytes | None = None, sid: str = "s1") -> Commit:
    rec = OutRecord("events", 1, seq, b'{"seq":%d}' % seq)
    return Commit(
        session_id=sid, node_id="n1", epoch=epoch, seq=seq, result=b'{"r":%d}' % seq,
        records=(rec,), snapshot=snap, config=b"{}" if snap else None,
    )  # fmt: skip


async def test_commit_take_over_and_fencing(store: MemoryStore | RedisStore) -> None:
    epoch = await store.create("s1", node_id="n1", config=b'{"sample_rate_hz": 44100}')
    for seq in range(6):
        await store.commit(_commit(seq, epoch, snap=b"SNAP%d" % seq if seq == 3 else None))
    assert await store.take_over("nope", node_id="n2") is None
    got = await store.take_over("s1", node_id="n2")
    assert got is not None
    assert (got.epoch, got.snapshot_seq, got.snapshot, got.last_result_seq) == (
        epoch + 1, 3, b"SNAP3", 5,
    )  # fmt: skip
    # the log keeps the last 4 results
    assert await store.results("s1", after_seq=-1, upto_seq=5) == [
        b'{"r":%d}' % i for i in (2, 3, 4, 5)
    ]
    assert await store.results("s1", after_seq=3, upto_seq=4) == [b'{"r":4}']
    # the old stream is fenced off
    with pytest.raises(Superseded):
        await store.commit(_commit(6, epoch))
    # the new owner recomputing seq 4..5 stores nothing twice; seq 6 is new
    before = store.appended_records
    for seq in (4, 5, 6):
        await store.commit(_commit(seq, got.epoch))
    assert store.appended_records == before + 1


async def test_outbox_read_ack(store: MemoryStore | RedisStore) -> None:
    epoch = await store.create("s2", node_id="n1", config=b"{}")
    for seq in range(5):
        await store.commit(_commit(seq, epoch, sid="s2"))
    got = await store.read(max_entries=3, block_s=0.1)
    recs = [e.record for e in got]
    assert [(r.session_id, r.seq, r.kind) for r in recs] == [("s2", i, "events") for i in range(3)]
    assert recs[0].payload == b'{"seq":0}' and recs[0].node_id == "n1"
    rest = await store.read(max_entries=10, block_s=0.1)
    assert [e.record.seq for e in rest] == [3, 4]
    await store.ack([e.entry_id for e in got + rest])
    assert await store.depth() == 0
    assert await store.read(max_entries=10, block_s=0.05) == []


async def test_group_commit_of_many_sessions(store: MemoryStore | RedisStore) -> None:
    epochs = {f"g{i}": await store.create(f"g{i}", node_id="n1", config=b"{}") for i in range(200)}

    async def session(sid: str) -> None:
        for seq in range(20):
            await store.commit(_commit(seq, epochs[sid], sid=sid))

    await asyncio.gather(*(session(s) for s in epochs))
    assert store.appended_records == 200 * 20
    if isinstance(store, RedisStore):
        assert store.batches < 200 * 20 / 4  # writes were grouped into few round trips


async def test_redis_outage_times_out_then_the_queued_write_lands(
    redis_server: RedisServer,
) -> None:
    s = RedisStore(redis_server.url, node_id="n1", ttl_s=60, log_keep=8, commit_timeout_s=0.3)
    try:
        epoch = await s.create("o1", node_id="n1", config=b"{}")
        await s.commit(_commit(0, epoch, sid="o1"))
        redis_server.kill()
        with pytest.raises(StoreUnavailable, match="did not confirm"):
            await s.commit(_commit(1, epoch, sid="o1"))
        for _ in range(100):  # the writer has seen the failure
            if not s.healthy:
                break
            await asyncio.sleep(0.02)
        t0 = asyncio.get_running_loop().time()
        with pytest.raises(StoreUnavailable, match="unreachable"):
            await s.commit(_commit(2, epoch, sid="o1"))
        assert asyncio.get_running_loop().time() - t0 < 0.05  # no wait while Redis is away
        redis_server.start()  # empty: the store recreates the session's keys from the commit
        for _ in range(100):
            if s.appended_records == 3:
                break
            await asyncio.sleep(0.1)
        assert s.appended_records == 3
        assert await s.results("o1", after_seq=-1, upto_seq=9) == [b'{"r":1}', b'{"r":2}']
    finally:
        await s.close()
