"""Registry on Consul through py-consul: a service instance per node with a TTL check.

Not run against a live Consul agent (none can be installed on the build machines); tested
against a fake agent that implements the documented HTTP API endpoints used here
(``tests/router/fake_consul.py``): ``PUT /v1/agent/service/register``,
``PUT /v1/agent/service/deregister/:id``, ``GET /v1/agent/services``,
``PUT /v1/agent/check/pass/:check_id?note=``, ``GET /v1/health/service/:name?passing&index&wait``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from typing import Any

import aiohttp
import consul
import consul.aio

from ..model import ErrorKind, NodeInfo, NodeLoad, NodeRecord, RouterError, invalid

SERVICE = "seminote-edge"
_META_KEY = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _unavailable(e: Exception) -> RouterError:
    return RouterError(ErrorKind.UNAVAILABLE, f"registry (consul) unreachable: {e}")


def _check_id(node_id: str) -> str:
    return f"seminote-ttl-{node_id}"


def _meta(info: NodeInfo, token: str) -> dict[str, str]:
    meta = {
        "provider": info.provider,
        "zone": info.zone,
        "region": info.region,
        "latitude_deg": repr(info.latitude_deg),
        "longitude_deg": repr(info.longitude_deg),
        "capacity": str(info.capacity),
        "cost_per_hour": repr(info.cost_per_hour),
        "capabilities": ",".join(sorted(info.capabilities)),
        "http_address": info.http_address,
        "token_sha256": _sha(token),
    }
    for k, v in info.metadata.items():
        key = f"m_{k}"
        if not _META_KEY.match(key) or len(v) > 512:
            raise invalid(
                f"node.metadata[{k!r}]: Consul meta keys are [A-Za-z0-9_-]{{1,126}}, values <= 512"
            )
        meta[key] = v
    if len(meta) > 64:
        raise invalid(f"node.metadata has {len(info.metadata)} keys; Consul allows 54 here")
    return meta


def _info_from_entry(svc: dict[str, Any]) -> NodeInfo:
    m = svc.get("Meta") or {}
    return NodeInfo.from_json(
        {
            "node_id": svc["ID"],
            "address": f"{svc['Address']}:{svc['Port']}",
            "provider": m.get("provider", "local"),
            "zone": m.get("zone", ""),
            "region": m.get("region", ""),
            "latitude_deg": float(m.get("latitude_deg", 0.0)),
            "longitude_deg": float(m.get("longitude_deg", 0.0)),
            "capabilities": [c for c in m.get("capabilities", "").split(",") if c],
            "capacity": int(m.get("capacity", 1)),
            "cost_per_hour": float(m.get("cost_per_hour", 0.0)),
            "http_address": m.get("http_address", ""),
            "metadata": {k[2:]: v for k, v in m.items() if k.startswith("m_")},
        }
    )


class ConsulRegistry:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8500,
        scheme: str = "http",
        deregister_after_s: float = 60.0,
    ) -> None:
        self._c = consul.aio.Consul(host=host, port=port, scheme=scheme)
        self._deregister_after_s = deregister_after_s
        self._index: str | None = None

    async def _entries(self, *, passing: bool, **kw: Any) -> tuple[str, list[dict[str, Any]]]:
        try:
            index, entries = await self._c.health.service(SERVICE, passing=passing, **kw)
        except (consul.ConsulException, aiohttp.ClientError, OSError) as e:
            raise _unavailable(e) from e
        return index, entries

    async def register(self, info: NodeInfo, *, token: str, ttl_s: float) -> None:
        _, entries = await self._entries(passing=False)
        for e in entries:
            svc = e["Service"]
            addr = f"{svc['Address']}:{svc['Port']}"
            if svc["ID"] == info.node_id and addr != info.address:
                raise RouterError(
                    ErrorKind.ALREADY_EXISTS,
                    f"node.node_id={info.node_id!r} is registered from {addr}; "
                    f"{info.address} cannot take it over",
                )
        host, port = info.address.rsplit(":", 1)
        check = {
            "CheckID": _check_id(info.node_id),
            "Name": "seminote heartbeat",
            "TTL": f"{ttl_s:g}s",
            "DeregisterCriticalServiceAfter": f"{self._deregister_after_s:g}s",
        }
        try:
            await self._c.agent.service.register(
                SERVICE,
                service_id=info.node_id,
                address=host.strip("[]"),
                port=int(port),
                tags=[info.provider, info.zone, info.region, *sorted(info.capabilities)],
                meta=_meta(info, token),
                check=check,
            )
            await self._c.agent.check.ttl_pass(
                _check_id(info.node_id), notes=json.dumps(asdict(NodeLoad()))
            )
        except (consul.ConsulException, aiohttp.ClientError, OSError) as e:
            raise _unavailable(e) from e

    async def _owner_sha(self, node_id: str) -> str | None:
        try:
            services = await self._c.agent.services()
        except (consul.ConsulException, aiohttp.ClientError, OSError) as e:
            raise _unavailable(e) from e
        svc = services.get(node_id)
        return None if svc is None else str((svc.get("Meta") or {}).get("token_sha256", ""))

    async def _authorise(self, node_id: str, token: str | None) -> None:
        sha = await self._owner_sha(node_id)
        if sha is None:
            raise RouterError(ErrorKind.NOT_FOUND, f"node_id={node_id!r} is not registered")
        if token is not None and sha != _sha(token):
            raise RouterError(
                ErrorKind.PERMISSION_DENIED, f"node_id={node_id!r} belongs to another instance"
            )

    async def heartbeat(self, node_id: str, *, token: str, load: NodeLoad, ttl_s: float) -> None:
        await self._authorise(node_id, token)
        try:
            await self._c.agent.check.ttl_pass(_check_id(node_id), notes=json.dumps(asdict(load)))
        except (consul.ConsulException, aiohttp.ClientError, OSError) as e:
            raise _unavailable(e) from e

    async def deregister(self, node_id: str, *, token: str | None) -> None:
        await self._authorise(node_id, token)
        try:
            await self._c.agent.service.deregister(node_id)
        except (consul.ConsulException, aiohttp.ClientError, OSError) as e:
            raise _unavailable(e) from e

    async def list_nodes(self) -> list[NodeRecord]:
        index, entries = await self._entries(passing=True)
        self._index = index
        out = []
        for e in entries:
            info = _info_from_entry(e["Service"])
            load = NodeLoad()
            for chk in e.get("Checks", []):
                if chk.get("CheckID") == _check_id(info.node_id) and chk.get("Output"):
                    try:
                        load = NodeLoad(**json.loads(chk["Output"]))
                    except (ValueError, TypeError):
                        pass
            out.append(NodeRecord(info=info, load=load, updated_at=0.0))
        return out

    async def wait_for_change(self, timeout_s: float) -> None:
        """A Consul blocking query: returns when the passing set changes or after the wait."""
        if self._index is None:
            return
        wait = f"{max(1, round(timeout_s))}s"
        index, _ = await self._entries(passing=True, index=self._index, wait=wait)
        self._index = index

    async def close(self) -> None:
        await self._c.close()
