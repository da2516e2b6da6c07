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
import json
import statistics
import tempfile
import time
from pathlib import Path

from loadtests.capacity_plot import plot_levels
from loadtests.procstat import cpu_ticks
from loadtests.ramp import P99_LIMIT_MS, Bench


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


#: the servers the bench can ramp (``--kinds``)
KINDS = ("edge", "echo", "edge-own", "edge-offgil")


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
    if rows.get("edge-offgil"):
        # the experiment of loadtests.offgil_server: the analysis's CPU paid by a helper
        # process while the batch thread waits without the GIL
        off = rows["edge-offgil"]
        caps_off = [int(e["capacity"]) for e in off]  # type: ignore[call-overload]
        summary["sessions_offgil"] = med(caps_off)
        summary["sessions_offgil_each"] = caps_off
        off80 = [e["at80"] for e in off if "at80" in e]
        if off80:
            for key in ("sessions", "p50_ms", "p95_ms", "p99_ms", "server_cores"):
                summary[f"offgil_at80_{key}"] = round(med(float(a[key]) for a in off80), 3)  # type: ignore[index]
        if rows["edge"]:
            summary["offgil_vs_ours"] = round(
                med(o / max(c, 1) for o, c in zip(caps_off, caps, strict=False)), 3
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
            "at80_loop_us_per_chunk": m("loop_us_per_chunk"),
            "at80_threads_us_per_chunk": m("threads_us_per_chunk"),
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
        help="servers to ramp, in order (reversed every other repeat): edge, echo, edge-own "
        "(ours, its load sent to each worker's own port as a load-aware router would spread it) "
        "and edge-offgil (ours with the analysis modelled in another process, an experiment: "
        "loadtests/offgil_server.py; needs --workers 1)",
    )
    p.add_argument("--soak-s", type=float, default=0.0, help="instead: hold ours this long")
    p.add_argument("--soak-sessions", type=int, default=12, help="sessions held by --soak-s")
    p.add_argument("--memory-sessions", type=int, default=0, help="instead: RSS per session")
    args = p.parse_args()
    kinds = [args.only] if args.only else args.kinds.split(",")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        p.error(f"--kinds: unknown {', '.join(unknown)}; known: {', '.join(KINDS)}")
    if "edge-offgil" in kinds and args.workers != 1:
        p.error("--kinds edge-offgil needs --workers 1 (the model patches one serving process)")
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
