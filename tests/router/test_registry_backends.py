"""The same registry semantics on Redis (a real redis-server) and Consul (fake agent)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from router.backends.consul_registry import ConsulRegistry
from router.backends.redis_registry import RedisRegistry
from router.model import ErrorKind, NodeLoad, RouterError
from router.registry import Registry
from tests.redis_server import RedisServer
from tests.router.fake_consul import FakeConsul
from tests.router.helpers import info


@pytest.fixture(params=["redis", "consul"])
async def registry(request: pytest.FixtureRequest) -> AsyncIterator[Registry]:
    if request.param == "redis":
        server = RedisServer()
        server.start()
        reg: Registry = RedisRegistry(server.url)
        try:
            yield reg
        finally:
            await reg.close()
            server.stop()
    else:
        fake = FakeConsul()
        await fake.start()
        reg = ConsulRegistry(port=fake.port, deregister_after_s=1.0)
        try:
            yield reg
        finally:
            await reg.close()
            await fake.stop()


async def _ids(reg: Registry) -> list[str]:
    return sorted(r.info.node_id for r in await reg.list_nodes())


async def test_register_heartbeat_load_and_ttl_expiry(registry: Registry) -> None:
    await registry.register(info("a"), token="ta", ttl_s=1.0)
    await registry.register(info("b", address="127.0.0.1:5002"), token="tb", ttl_s=1.0)
    assert await _ids(registry) == ["a", "b"]
    await registry.heartbeat("a", token="ta", load=NodeLoad(active_sessions=7), ttl_s=1.0)
    loads = {r.info.node_id: r.load.active_sessions for r in await registry.list_nodes()}
    assert loads["a"] == 7
    for _ in range(6):  # keep a alive, let b lapse
        await asyncio.sleep(0.3)
        await registry.heartbeat("a", token="ta", load=NodeLoad(active_sessions=1), ttl_s=1.0)
    assert await _ids(registry) == ["a"]


async def test_duplicate_id_from_another_address_is_refused_and_not_hijacked(
    registry: Registry,
) -> None:
    await registry.register(info("a"), token="ta", ttl_s=5.0)
    with pytest.raises(RouterError) as e:
        await registry.register(info("a", address="10.9.9.9:1"), token="evil", ttl_s=5.0)
    assert e.value.kind is ErrorKind.ALREADY_EXISTS and "127.0.0.1:5001" in e.value.message
    with pytest.raises(RouterError) as e:
        await registry.heartbeat("a", token="evil", load=NodeLoad(), ttl_s=5.0)
    assert e.value.kind is ErrorKind.PERMISSION_DENIED
    with pytest.raises(RouterError) as e:
        await registry.deregister("a", token="evil")
    assert e.value.kind is ErrorKind.PERMISSION_DENIED
    nodes = await registry.list_nodes()
    assert [(n.info.node_id, n.info.address) for n in nodes] == [("a", "127.0.0.1:5001")]
    # the same address may take over (a restarted node with a new token)
    await registry.register(info("a"), token="ta2", ttl_s=5.0)
    await registry.heartbeat("a", token="ta2", load=NodeLoad(), ttl_s=5.0)


async def test_deregister_and_not_found(registry: Registry) -> None:
    await registry.register(info("a"), token="ta", ttl_s=5.0)
    await registry.deregister("a", token="ta")
    assert await _ids(registry) == []
    with pytest.raises(RouterError) as e:
        await registry.heartbeat("a", token="ta", load=NodeLoad(), ttl_s=5.0)
    assert e.value.kind is ErrorKind.NOT_FOUND


async def test_wait_for_change_returns_on_registration(registry: Registry) -> None:
    await registry.list_nodes()
    waiter = asyncio.create_task(registry.wait_for_change(5.0))
    await asyncio.sleep(0.2)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await registry.register(info("z"), token="tz", ttl_s=5.0)
    await asyncio.wait_for(waiter, 3.0)
    assert loop.time() - t0 < 2.0


async def test_unreachable_backend_is_unavailable() -> None:
    from tests.redis_server import free_port

    reg = RedisRegistry(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(RouterError) as e:
        await reg.list_nodes()
    assert e.value.kind is ErrorKind.UNAVAILABLE
    await reg.close()
