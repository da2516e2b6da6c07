"""Sessions one node holds in real time, ours beside the echo floor, in one run.

    python -m loadtests.capacity [--repeats 3] [--workers 2] [--generators 2] [--plot PNG]

For each repeat (alternating which server goes first) and each server:

1. start the server: ``edge-server serve --workers W`` on its embedded defaults (memory
   store, no Redis or Consul; ``max_sessions`` raised so that only load limits admission), or
   the echo floor ``loadtests.echo_server --workers W`` (same proto, gRPC options, process
   count and event loop; answers each chunk without analysis);
2. ramp sessions with the lean generator (``loadtests.loadgen``, ``--generators`` processes;
   44.1 kHz PCM16 1024-frame chunks at real-time pace, ``ONSETS, FEATURES, NOTES``):
   x1.5 per level until a level fails, then bisect. A level holds when, over its window, the
   audio-to-result p99 is <= 20 ms, no stream fell behind real time (a send > 100 ms late),
   no session was refused and no stream failed;
3. for ours, hold 80 % of its capacity for ``--hold-s`` and measure latency percentiles,
   server CPU per audio-second per session, and server RSS (total and per session, over the
   idle server's RSS).

Prints one line per level, then one JSON line with the medians over repeats, and writes a
plot of latency against sessions. Server and generator share this machine's cores: the
generators' own CPU is in the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loadtests.capacity_plot import plot_levels
from loadtests.procstat import cpu_s, cpu_ticks, rss_mb, tree

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
            cmd = [sys.executable, "-m", "edge_server.cli", "serve", "--grpc-port", "0",
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
        g0 = [float((await g.ask({"cmd": "report"}))["cpu_s"]) for g in gens]
        await asyncio.sleep(hold_s)
        reps = await asyncio.gather(*(g.ask({"cmd": "report"}) for g in gens))
        dt = time.monotonic() - t0
        s1 = cpu_s(server_pids)
        lat = np.concatenate([np.asarray(r["lat_us"], dtype=np.float64) for r in reps]) / 1e3
        pct = np.percentile(lat, [50, 95, 99]) if lat.size else np.full(3, math.inf)
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


async def soak(args: argparse.Namespace, cfg: Path) -> dict[str, object]:
    """Hold ``--soak-sessions`` on our server for ``--soak-s``; RSS and latency every 30 s."""
    bench = Bench(args)
    async with bench.running("edge", cfg) as (pids, idle, gens):
        samples = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.soak_s:
            lv = await bench._level(args.soak_sessions, gens, pids, 30.0 - args.settle_s)
            row = {
                "t_s": round(time.monotonic() - t0),
                "rss_mb": round(lv.rss_mb, 1),
                "p99_ms": round(lv.p99_ms, 2),
                "behind": lv.behind,
                "errors": lv.errors,
            }
            samples.append(row)
            print(f"  soak {row}", flush=True)
        rss = [x["rss_mb"] for x in samples]
        half = len(rss) // 2
        return {
            "bench": "soak",
            "sessions": args.soak_sessions,
            "seconds": args.soak_s,
            "rss_idle_mb": round(idle, 1),
            "rss_first_mb": rss[0],
            "rss_last_mb": rss[-1],
            # growth over the second half (after warm-up), per minute
            "rss_growth_mb_per_min_2nd_half": round(
                (rss[-1] - rss[half]) / max((samples[-1]["t_s"] - samples[half]["t_s"]) / 60, 1e-9),
                3,
            ),
            "rss_per_session_mb": round((rss[-1] - idle) / args.soak_sessions, 3),
            "p99_ms_max": max(x["p99_ms"] for x in samples),
            "behind_total": sum(int(x["behind"]) for x in samples),
            "samples": samples,
        }


async def memory(args: argparse.Namespace, cfg: Path) -> dict[str, object]:
    """Server RSS per session: ``--memory-sessions`` streams sending 10x slower than real
    time (the same per-session state and buffers, little CPU), RSS against the idle server."""
    bench = Bench(args)
    async with bench.running("edge", cfg, slow_down=10.0) as (pids, idle, gens):
        out: dict[str, object] = {"bench": "memory", "rss_idle_mb": round(idle, 1)}
        rows = []
        for n in (args.memory_sessions // 2, args.memory_sessions):
            lv = await bench._level(n, gens, pids, 20.0)
            rows.append((n, lv.rss_mb))
            print(f"  memory {n} sessions: RSS {lv.rss_mb:.1f} MB, errors {lv.errors}", flush=True)
        (n1, r1), (n2, r2) = rows
        out |= {
            "sessions": n2,
            "rss_mb": round(r2, 1),
            "rss_per_session_mb": round((r2 - idle) / n2, 3),
            "rss_per_added_session_mb": round((r2 - r1) / (n2 - n1), 3),
        }
        return out


async def run(args: argparse.Namespace) -> dict[str, object]:
    bench = Bench(args)
    steal0, total0 = cpu_ticks()
    kinds = [args.only] if args.only else args.kinds.split(",")
    rows: dict[str, list[dict[str, object]]] = {k: [] for k in ("edge", "echo", *kinds)}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "bench.toml"
        # only load (the batcher's overload signal) limits admission, not a session count
        text = "[manager]\nmax_sessions = 100000\n"
        if args.batcher_budget_s is not None:  # the batcher's wait for more chunks (default 3 ms)
            text += f"[batcher]\nbudget_s = {args.batcher_budget_s}\n"
        cfg.write_text(text)
        if args.soak_s:
            return await soak(args, cfg)
        if args.memory_sessions:
            return await memory(args, cfg)
        for r in range(args.repeats):
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                print(f"repeat {r + 1}: {kind}", flush=True)
                rows[kind].append(await bench.ramp(kind, cfg))
    steal1, total1 = cpu_ticks()
    med = statistics.median
    edge, echo = rows["edge"], rows["echo"]
    caps = [int(e["capacity"]) for e in edge] or [0]  # type: ignore[call-overload]
    floors = [int(e["capacity"]) for e in echo] or [0]  # type: ignore[call-overload]
    at80 = [e["at80"] for e in edge if "at80" in e]
    summary: dict[str, object] = {
        "bench": "capacity",
        "workers": args.workers,
        "generators": args.generators,
        "chunk": "44.1 kHz PCM16 mono, 1024 frames",
        "analyses": "ONSETS,FEATURES,NOTES",
        "repeats": args.repeats,
        "p99_limit_ms": args.p99_limit_ms,
        "sessions_ours": med(caps),
        "sessions_ours_each": caps,
        "cpu_steal_pct": round(100 * (steal1 - steal0) / max(total1 - total0, 1), 2),
    }
    if echo:  # the ratio only when both ran, in this run
        summary |= {
            "sessions_echo_floor": med(floors),
            "ratio": round(med(c / max(f, 1) for c, f in zip(caps, floors, strict=False)), 3),
            "sessions_echo_each": floors,
        }
    if rows.get("edge-own"):
        own = [int(e["capacity"]) for e in rows["edge-own"]]  # type: ignore[call-overload]
        summary["sessions_ours_own_ports"] = med(own)
        summary["sessions_ours_own_ports_each"] = own
        if rows["edge"]:
            summary["own_ports_vs_shared"] = round(
                med(o / max(c, 1) for o, c in zip(own, caps, strict=False)), 3
            )
    weak = sum(1 for e in echo if int(e["capacity"]) < args.start)  # type: ignore[call-overload]
    if weak:
        # a bare echo server that cannot hold the first level means the machine (a busy or
        # jittery VM), not the servers, set this run's figures: say so in the result
        summary["warning"] = (
            f"the echo floor failed its first level ({args.start} sessions) in {weak} of "
            f"{len(echo)} repeats: the machine, not the servers, limited this run"
        )
    if at80:

        def m(key: str) -> float:
            return round(med(float(a[key]) for a in at80), 3)  # type: ignore[index]

        n80 = m("sessions")
        summary |= {
            "at80_sessions": n80,
            "at80_p50_ms": m("p50_ms"),
            "at80_p95_ms": m("p95_ms"),
            "at80_p99_ms": m("p99_ms"),
            "at80_behind": m("behind"),
            "at80_server_cores": m("server_cores"),
            "at80_generator_cores": m("gen_cores"),
            "server_cpu_us_per_audio_s_per_session": round(
                med(
                    float(a["server_cores"]) / float(a["sessions"]) * 1e6  # type: ignore[index]
                    for a in at80
                ),
                1,
            ),
        }
        per = [
            (float(e["rss_at_capacity_mb"]) - float(e["idle_rss_mb"])) / max(int(e["capacity"]), 1)  # type: ignore[call-overload, arg-type]
            for e in edge
        ]
        summary["rss_total_at_capacity_mb"] = round(
            med(float(e["rss_at_capacity_mb"]) for e in edge), 1
        )  # type: ignore[arg-type]
        summary["rss_idle_mb"] = round(med(float(e["idle_rss_mb"]) for e in edge), 1)  # type: ignore[arg-type]
        summary["rss_per_session_mb"] = round(med(per), 3)
        rej = [x for e in edge for x in e.get("reject_ms", [])]  # type: ignore[attr-defined]
        if rej:
            summary["refusal_ms_max"] = round(max(rej), 1)
    if args.plot:
        plot_levels(rows, Path(args.plot), limit_ms=args.p99_limit_ms)
        summary["plot"] = str(args.plot)
    return summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="server processes (SO_REUSEPORT)")
    p.add_argument("--generators", type=int, default=2, help="load generator processes")
    p.add_argument("--channels", type=int, default=8, help="connections per generator")
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    p.add_argument("--start", type=int, default=8, help="first level, sessions")
    p.add_argument("--growth", type=float, default=1.5)
    p.add_argument("--bisect", type=int, default=2)
    p.add_argument("--max-sessions", type=int, default=5000)
    p.add_argument("--settle-s", type=float, default=1.0)
    p.add_argument("--window-s", type=float, default=2.5)
    p.add_argument("--hold-s", type=float, default=8.0, help="the 80 %% level's window")
    p.add_argument(
        "--p99-limit-ms",
        type=float,
        default=P99_LIMIT_MS,
        help="a level holds when its p99 is at most this (the issue's 20 ms; the smoke test "
        "raises it to check the bench's mechanics on a slow machine)",
    )
    p.add_argument("--plot", default="loadtests/out/capacity.png")
    p.add_argument("--only", choices=["edge", "echo"], default=None, help="one server only")
    p.add_argument(
        "--batcher-budget-s",
        type=float,
        default=None,
        help="ours: the longest a chunk waits for others to join its batch (default: the "
        "node's, 3 ms)",
    )
    p.add_argument(
        "--kinds",
        default="edge,echo",
        help="servers to ramp, in order (reversed every other repeat): edge, echo, and edge-own "
        "(ours, its load sent to each worker's own port as a load-aware router would spread it)",
    )
    p.add_argument("--soak-s", type=float, default=0.0, help="instead: hold ours this long")
    p.add_argument("--soak-sessions", type=int, default=12, help="sessions held by --soak-s")
    p.add_argument("--memory-sessions", type=int, default=0, help="instead: RSS per session")
    args = p.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
