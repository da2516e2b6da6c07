"""A fake Consul agent: the documented HTTP API endpoints the Consul registry uses.

It is a stand-in because no Consul agent can be installed on these machines. Behaviour follows
the Consul HTTP API docs: service registration with an embedded TTL check (CheckID, TTL,
DeregisterCriticalServiceAfter), ``/v1/agent/check/pass`` with a note as Output, TTL expiry
turning the check critical, reaping after DeregisterCriticalServiceAfter, and blocking queries on
``/v1/health/service/:name`` with ``index``/``wait`` and the ``X-Consul-Index`` header.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from aiohttp import web


def _dur(s: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(ms|s|m|h)", s)
    assert m, s
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _ci(d: dict[str, Any], key: str, default: Any = None) -> Any:
    for k, v in d.items():
        if k.lower() == key.lower():
            return v
    return default


class FakeConsul:
    def __init__(self) -> None:
        self.services: dict[str, dict[str, Any]] = {}
        self.checks: dict[str, dict[str, Any]] = {}
        self.index = 1
        self._changed = asyncio.Condition()
        self.app = web.Application()
        r = self.app.router
        r.add_put("/v1/agent/service/register", self.register)
        r.add_put("/v1/agent/service/deregister/{id}", self.deregister)
        r.add_get("/v1/agent/services", self.agent_services)
        r.add_put("/v1/agent/check/pass/{id}", self.check_pass)
        r.add_get("/v1/health/service/{name}", self.health_service)
        self._runner = web.AppRunner(self.app)
        self.port = 0
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def stop(self) -> None:
        if self._reaper:
            self._reaper.cancel()
        await self._runner.cleanup()

    async def _bump(self) -> None:
        async with self._changed:
            self.index += 1
            self._changed.notify_all()

    def _status(self, check_id: str) -> str:
        c = self.checks[check_id]
        return "passing" if time.monotonic() - c["last_pass"] <= c["ttl"] else "critical"

    async def _reap(self) -> None:
        states: dict[str, str] = {}
        while True:
            await asyncio.sleep(0.1)
            changed = False
            for cid, c in list(self.checks.items()):
                st = self._status(cid)
                if states.get(cid) != st:
                    states[cid] = st
                    changed = True
                if st == "critical" and time.monotonic() - c["last_pass"] > c["ttl"] + c["dereg"]:
                    self.services.pop(c["service_id"], None)
                    del self.checks[cid]
                    changed = True
            if changed:
                await self._bump()

    async def register(self, req: web.Request) -> web.Response:
        body = json.loads(await req.text())
        sid = _ci(body, "ID") or _ci(body, "Name")
        checks = _ci(body, "Checks") or ([_ci(body, "Check")] if _ci(body, "Check") else [])
        for c in [c for c in self.checks.values() if c["service_id"] == sid]:
            del self.checks[c["id"]]
        self.services[sid] = {
            "ID": sid,
            "Service": _ci(body, "Name"),
            "Address": _ci(body, "Address", ""),
            "Port": _ci(body, "Port", 0),
            "Tags": _ci(body, "Tags", []),
            "Meta": _ci(body, "Meta", {}),
        }
        for i, c in enumerate(checks):
            cid = _ci(c, "CheckID") or f"service:{sid}" + (f":{i + 1}" if len(checks) > 1 else "")
            self.checks[cid] = {
                "id": cid,
                "service_id": sid,
                "ttl": _dur(_ci(c, "TTL")),
                "dereg": _dur(_ci(c, "DeregisterCriticalServiceAfter", "72h")),
                "last_pass": -1e9,  # critical until the first pass, as Consul does
                "output": "",
            }
        await self._bump()
        return web.Response(text="")

    async def deregister(self, req: web.Request) -> web.Response:
        sid = req.match_info["id"]
        if sid not in self.services:
            return web.Response(status=404, text=f'Unknown service ID "{sid}"')
        del self.services[sid]
        for cid in [c for c, v in self.checks.items() if v["service_id"] == sid]:
            del self.checks[cid]
        await self._bump()
        return web.Response(text="")

    async def agent_services(self, req: web.Request) -> web.Response:
        return web.json_response(self.services)

    async def check_pass(self, req: web.Request) -> web.Response:
        cid = req.match_info["id"]
        if cid not in self.checks:
            return web.Response(status=404, text=f'Unknown check ID "{cid}"')
        self.checks[cid]["last_pass"] = time.monotonic()
        self.checks[cid]["output"] = req.query.get("note", "")
        await self._bump()
        return web.Response(text="")

    def _entries(self, name: str, passing: bool) -> list[dict[str, Any]]:
        out = []
        for sid, svc in self.services.items():
            if svc["Service"] != name:
                continue
            checks = [
                {
                    "CheckID": cid,
                    "Status": self._status(cid),
                    "Output": c["output"],
                    "ServiceID": sid,
                }
                for cid, c in self.checks.items()
                if c["service_id"] == sid
            ]
            if passing and any(c["Status"] != "passing" for c in checks):
                continue
            out.append({"Node": {"Node": "fake-agent"}, "Service": svc, "Checks": checks})
        return out

    async def health_service(self, req: web.Request) -> web.Response:
        name = req.match_info["name"]
        passing = "passing" in req.query
        if "index" in req.query:
            want = int(req.query["index"])
            wait = _dur(req.query.get("wait", "300s"))
            async with self._changed:
                try:
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: self.index > want), timeout=wait
                    )
                except TimeoutError:
                    pass
        return web.json_response(
            self._entries(name, passing), headers={"X-Consul-Index": str(self.index)}
        )
