"""The capacity bench's machinery: a server and its load generators, one level of sessions
measured, and the ramp of levels (x growth until one fails, then bisection)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loadtests.procstat import cpu_s, rss_mb, thread_cpu_s, tree

P99_LIMIT_MS = 20.0


@dataclass
class Level:
    sessions: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    behind: int
    rejected: int
    errors: int
    flow: int
    active: int
    server_cores: float
    gen_cores: float
    rss_mb: float
    #: server CPU per chunk answered, us: its processes' main threads (event loops) and their
    #: other threads (batch threads, gRPC pollers)
    loop_us_per_chunk: float = 0.0
    threads_us_per_chunk: float = 0.0
    reject_ms: list[float] = field(default_factory=list)
    p99_limit_ms: float = P99_LIMIT_MS

    @property
    def ok(self) -> bool:
        return (
            self.p99_ms <= self.p99_limit_ms
            and self.behind == 0
            and self.rejected == 0
            and self.errors == 0
            and self.active == self.sessions
        )


class Gen:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def ask(self, cmd: dict[str, object]) -> dict[str, object]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), 120)
        if not line:
            raise RuntimeError("load generator exited")
        out: dict[str, object] = json.loads(line)
        return out


async def _stop(gens: list[Gen], server: asyncio.subprocess.Process) -> None:
    """Stop the generators (politely, then for sure) and the server (SIGTERM: drains)."""
    for g in gens:
        try:
            await g.ask({"cmd": "quit"})
        except (RuntimeError, BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        if g.proc.returncode is None:
            g.proc.kill()
        await g.proc.wait()
    server.terminate()
    await server.wait()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args

    async def _server(self, kind: str, cfg: Path) -> tuple[asyncio.subprocess.Process, list[str]]:
        """The started server and the addresses its load goes to: the shared port, or for
        ``edge-own`` each worker's own port (as a router that balances workers would)."""
        w = str(self.a.workers)
        ports_file = cfg.with_name("ports.json")
        if kind.startswith("edge"):
            # edge-offgil: ours with the analysis modelled off the GIL (loadtests.offgil_server)
            module = "loadtests.offgil_server" if kind == "edge-offgil" else "edge_server.cli"
            cmd = [sys.executable, "-m", module, "serve", "--grpc-port", "0",
                   "--http-port", "0", "--workers", w, "--loop", self.a.loop,
                   "--config", str(cfg), "--log-level", "WARNING",
                   "--ports-file", str(ports_file)]  # fmt: skip
        else:
            cmd = [sys.executable, "-m", "loadtests.echo_server", "--port", "0", "--workers", w,
                   "--loop", self.a.loop]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode()
        shared = [f"127.0.0.1:{int(line.split('grpc=')[1].split()[0])}"]
        if kind != "edge-own":
            return proc, shared
        own = [int(p) for p in json.loads(ports_file.read_text()).get("grpc_workers", []) if p]
        if len(own) != self.a.workers:
            raise RuntimeError(f"edge-own: the workers' own ports are not all known: {own}")
        return proc, [f"127.0.0.1:{p}" for p in own]

    async def _gens(self, targets: list[str], slow_down: float = 1.0) -> list[Gen]:
        gens = []
        for i in range(self.a.generators):
            # each generator starts its alternation at another target, so that their
            # sessions add up evenly over the targets
            k = i % len(targets)
            target = ",".join(targets[k:] + targets[:k])
            p = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "loadtests.loadgen", "--target", target,
                "--channels", str(self.a.channels), "--slow-down", str(slow_down),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 28,
            )  # fmt: skip
            assert p.stdout is not None
            await asyncio.wait_for(p.stdout.readline(), 60)
            gens.append(Gen(p))
        return gens

    async def _level(self, n: int, gens: list[Gen], server_pids: list[int], hold_s: float) -> Level:
        shares = [n // len(gens) + (i < n % len(gens)) for i in range(len(gens))]
        sets = await asyncio.gather(
            *(g.ask({"cmd": "set", "n": k}) for g, k in zip(gens, shares, strict=True))
        )
        await asyncio.sleep(self.a.settle_s)
        await asyncio.gather(*(g.ask({"cmd": "mark"}) for g in gens))
        s0, t0 = cpu_s(server_pids), time.monotonic()
        th0 = thread_cpu_s(server_pids)
        g0 = [float((await g.ask({"cmd": "report"}))["cpu_s"]) for g in gens]
        await asyncio.sleep(hold_s)
        reps = await asyncio.gather(*(g.ask({"cmd": "report"}) for g in gens))
        dt = time.monotonic() - t0
        s1 = cpu_s(server_pids)
        th1 = thread_cpu_s(server_pids)
        lat = np.concatenate([np.asarray(r["lat_us"], dtype=np.float64) for r in reps]) / 1e3
        pct = np.percentile(lat, [50, 95, 99]) if lat.size else np.full(3, math.inf)
        per_chunk = 1e6 / max(lat.size, 1)  # us per chunk answered in the window
        return Level(
            sessions=n,
            p50_ms=float(pct[0]),
            p95_ms=float(pct[1]),
            p99_ms=float(pct[2]),
            behind=sum(int(r["behind"]) for r in reps),  # type: ignore[call-overload]
            rejected=sum(int(s["rejected"]) for s in sets),  # type: ignore[call-overload]
            errors=sum(int(r["n_errors"]) for r in reps),  # type: ignore[call-overload]
            flow=sum(int(r["flow"]) for r in reps),  # type: ignore[call-overload]
            active=sum(int(r["active"]) for r in reps),  # type: ignore[call-overload]
            server_cores=(s1 - s0) / dt,
            gen_cores=sum(float(r["cpu_s"]) - c for r, c in zip(reps, g0, strict=True)) / dt,  # type: ignore[arg-type]
            rss_mb=rss_mb(server_pids),
            loop_us_per_chunk=(th1[0] - th0[0]) * per_chunk,
            threads_us_per_chunk=(th1[1] - th0[1]) * per_chunk,
            reject_ms=[x for s in sets for x in s["reject_ms"]],  # type: ignore[attr-defined]
            p99_limit_ms=self.a.p99_limit_ms,
        )

    @contextlib.asynccontextmanager
    async def running(
        self, kind: str, cfg: Path, slow_down: float = 1.0
    ) -> AsyncIterator[tuple[list[int], float, list[Gen]]]:
        """A started server and generators: (server pids, idle server RSS MB, generators)."""
        proc, targets = await self._server(kind, cfg)
        gens: list[Gen] = []
        try:
            await asyncio.sleep(1.0)
            pids = tree(proc.pid)
            idle = rss_mb(pids)
            gens = await self._gens(targets, slow_down)
            yield pids, idle, gens
        finally:
            await _stop(gens, proc)

    async def ramp(self, kind: str, cfg: Path) -> dict[str, object]:
        async with self.running(kind, cfg) as (pids, idle_rss, gens):
            levels: list[Level] = []

            async def run(n: int, hold_s: float) -> Level:
                lv = await self._level(n, gens, pids, hold_s)
                levels.append(lv)
                print(
                    f"  {kind:8s} {n:5d} sessions: p50 {lv.p50_ms:6.2f} p95 {lv.p95_ms:6.2f} "
                    f"p99 {lv.p99_ms:7.2f} ms  behind {lv.behind} refused {lv.rejected} "
                    f"errors {lv.errors} flow {lv.flow}  server {lv.server_cores:.2f} cores, "
                    f"generators {lv.gen_cores:.2f} cores, RSS {lv.rss_mb:.0f} MB  "
                    f"{'ok' if lv.ok else 'FAIL'}",
                    flush=True,
                )
                return lv

            good: Level | None = None
            bad = 0
            n = self.a.start
            while n <= self.a.max_sessions:
                lv = await run(n, self.a.window_s)
                if not lv.ok:
                    bad = n
                    break
                good = lv
                n = math.ceil(n * self.a.growth)
            lo = good.sessions if good else 0
            hi = bad or lo
            for _ in range(self.a.bisect):
                if hi - lo <= max(2, lo // 20):
                    break
                mid = (lo + hi) // 2
                await asyncio.gather(*(g.ask({"cmd": "set", "n": 0}) for g in gens))
                await asyncio.sleep(1.0)  # let a backlog from the failed level drain
                lv = await run(mid, self.a.window_s)
                if lv.ok:
                    lo, good = mid, lv
                else:
                    hi = mid
            out: dict[str, object] = {
                "capacity": lo,
                "levels": [lv.__dict__ for lv in levels],
                "idle_rss_mb": idle_rss,
                "rss_at_capacity_mb": good.rss_mb if good else idle_rss,
            }
            if kind.startswith("edge") and lo > 0:
                await asyncio.gather(*(g.ask({"cmd": "set", "n": 0}) for g in gens))
                await asyncio.sleep(1.0)
                at80 = await run(max(1, round(0.8 * lo)), self.a.hold_s)
                out["at80"] = at80.__dict__
                out["reject_ms"] = [x for lv in levels for x in lv.reject_ms]
            return out
