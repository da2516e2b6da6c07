"""``edge-server``: run an edge node."""

from __future__ import annotations

import os

# One BLAS thread per process, set before numpy loads: batched products are big enough for
# OpenBLAS to start its own threads, which spin and took ~0.9 cores at 16 sessions
# (docs/capacity.md); serving uses processes (--workers) for parallelism instead.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402 - after the BLAS thread setting
import asyncio
import dataclasses
import logging
import signal
import sys
from pathlib import Path

from .app import EdgeNode
from .config import ServerConfig, load_config
from .runtime import tune_malloc


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-server", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the gRPC + HTTP server")
    s.add_argument("--grpc-port", type=int, default=None, help="gRPC port (default 50051; 0 = any)")
    s.add_argument("--http-port", type=int, default=None, help="HTTP port (default 8080; 0 = any)")
    s.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    s.add_argument("--config", type=Path, default=None, help="TOML file (see docs/config.md)")
    s.add_argument("--node-id", default=None)
    s.add_argument("--zone", default=None)
    s.add_argument("--ports-file", type=Path, default=None, help="write bound ports as JSON here")
    r = s.add_argument_group("registry (optional: announce this node to routers)")
    r.add_argument("--registry", default=None, help="redis://HOST:PORT/DB, consul://HOST:PORT")
    r.add_argument("--advertise", default=None, help="HOST:PORT clients should use")
    r.add_argument("--provider", default=None, choices=["aws", "azure", "gcp", "local"])
    r.add_argument("--region", default=None)
    r.add_argument("--lat", type=float, default=None, help="node latitude, degrees")
    r.add_argument("--lon", type=float, default=None, help="node longitude, degrees")
    r.add_argument("--capacity", type=int, default=None, help="sessions (default max_sessions)")
    r.add_argument("--cost-per-hour", type=float, default=None)
    r.add_argument("--ttl-s", type=float, default=None, help="registration TTL (default 3 s)")
    r.add_argument("--heartbeat-s", type=float, default=None, help="default 1 s")
    d = s.add_argument_group("sessions and cloud sync (optional)")
    d.add_argument("--store", default=None, help="memory:// (default) or redis://HOST:PORT/DB")
    d.add_argument("--cloud", default=None, help="cloud stream redis://HOST:PORT/DB (forwarder)")
    d.add_argument("--spool-dir", default=None, help="forwarder spool (default spool/<node-id>)")
    d.add_argument("--spool-max-mb", type=float, default=None, help="default 256")
    d.add_argument("--cloud-key-file", default=None, help="AES-256-GCM key, 64 hex digits")
    d.add_argument("--bandwidth", type=int, default=None, help="cloud link cap, bytes/s")
    s.add_argument(
        "--workers", type=int, default=None, help="serving processes on one port (default 1)"
    )
    s.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    s.add_argument("--own-grpc-port", type=int, default=0, help=argparse.SUPPRESS)
    s.add_argument(
        "--loop", choices=["asyncio", "uvloop"], default=None, help="event loop (default uvloop)"
    )
    s.add_argument("--log-level", default="INFO")
    k = sub.add_parser("sink", help="run the cloud consumer and its HTTP API")
    k.add_argument("--redis", required=True, help="cloud stream redis://HOST:PORT/DB")
    k.add_argument("--db", default="sink.db", help="sqlite:///PATH or PATH (default sink.db)")
    k.add_argument("--host", default="127.0.0.1")
    k.add_argument("--http-port", type=int, default=8090, help="0 = any")
    k.add_argument("--key-file", default=None, help="AES-256-GCM key, 64 hex digits")
    k.add_argument("--consumer", default=None, help="consumer name in the group")
    k.add_argument("--claim-idle-s", type=float, default=5.0)
    k.add_argument("--max-deliveries", type=int, default=5)
    k.add_argument("--read-count", type=int, default=32, help="entries per XREADGROUP")
    k.add_argument("--ports-file", type=Path, default=None)
    k.add_argument("--log-level", default="INFO")
    return p


async def _serve(args: argparse.Namespace) -> int:
    cfg = load_config(
        args.config,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        host=args.host,
        node_id=args.node_id,
        zone=args.zone,
    )
    reg = {
        "url": args.registry, "advertise": args.advertise, "provider": args.provider,
        "region": args.region, "latitude_deg": args.lat, "longitude_deg": args.lon,
        "capacity": args.capacity, "cost_per_hour": args.cost_per_hour, "ttl_s": args.ttl_s,
        "heartbeat_s": args.heartbeat_s,
    }  # fmt: skip
    changes = {k: v for k, v in reg.items() if v is not None}
    if changes:
        cfg = dataclasses.replace(cfg, registry=dataclasses.replace(cfg.registry, **changes))
    if args.store is not None:
        cfg = dataclasses.replace(cfg, store=dataclasses.replace(cfg.store, url=args.store))
    sync = {
        "cloud_url": args.cloud, "spool_dir": args.spool_dir, "spool_max_mb": args.spool_max_mb,
        "key_file": args.cloud_key_file, "bandwidth_bytes_per_s": args.bandwidth,
    }  # fmt: skip
    sync_changes = {k: v for k, v in sync.items() if v is not None}
    if sync_changes:
        cfg = dataclasses.replace(cfg, sync=dataclasses.replace(cfg.sync, **sync_changes))
    if args.worker_index is not None:  # one of --workers N processes sharing the port
        cfg = dataclasses.replace(
            cfg,
            node_id=f"{cfg.node_id}-w{args.worker_index}",
            reuse_port=True,
            own_grpc_port=args.own_grpc_port,
        )
    node = EdgeNode(cfg)
    await node.start()
    if args.ports_file is not None:
        import json

        args.ports_file.write_text(json.dumps({"grpc": node.grpc_port, "http": node.http_port}))
    own = f" own={node.grpc.own_port}" if node.grpc.own_port else ""
    print(f"edge-server ready grpc={node.grpc_port} http={node.http_port}{own}", flush=True)
    await _until_signalled()
    await node.stop()
    return 0


def _supervise(args: argparse.Namespace, cfg: ServerConfig, argv: list[str]) -> int:
    """Replace this process with the lean supervisor (``edge_server.workers``, standard
    library only): it need not hold numpy, gRPC and the models that this one has loaded."""
    passed: list[str] = []
    skip = {"serve", "--workers", "--grpc-port", "--http-port", "--ports-file"}
    it = iter(argv)
    for a in it:
        key = a.split("=", 1)[0]
        if key in skip:
            if "=" not in a and key != "serve":
                next(it, None)
            continue
        passed.append(a)
    cmd = [sys.executable, "-m", "edge_server.workers", "--workers", str(cfg.workers),
           "--host", cfg.host, "--grpc-port", str(cfg.grpc_port),
           "--http-port", str(cfg.http_port)]  # fmt: skip
    if args.ports_file is not None:
        cmd += ["--ports-file", str(args.ports_file)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [*cmd, "--", *passed])


async def _until_signalled() -> None:
    """Wait for SIGTERM or SIGINT; SIGUSR1 meanwhile dumps the asyncio tasks."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)
    await stop.wait()


def _dump_tasks() -> None:
    """SIGUSR1: print every asyncio task's stack to stderr (diagnosing a stuck node)."""
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}: {task.get_coro()}", file=sys.stderr)
        try:
            task.print_stack(file=sys.stderr)
        except (TypeError, ValueError):  # compiled (Cython) coroutines have no line numbers
            print("    (no Python stack)", file=sys.stderr)
    sys.stderr.flush()


async def _sink(args: argparse.Namespace) -> int:
    import json

    from .sink.consumer import CloudConsumer, ConsumerConfig
    from .sink.db import open_db
    from .sink.service import SinkService
    from .sync.codec import parse_key

    key = (
        parse_key(await asyncio.to_thread(Path(args.key_file).read_text)) if args.key_file else None
    )
    cc = ConsumerConfig(
        redis_url=args.redis,
        key=key,
        claim_idle_s=args.claim_idle_s,
        max_deliveries=args.max_deliveries,
        read_count=args.read_count,
        **({"consumer": args.consumer} if args.consumer else {}),
    )
    db = open_db(args.db)
    svc = SinkService(CloudConsumer(db, cc), db, host=args.host, port=args.http_port)
    await svc.start()
    if args.ports_file is not None:
        args.ports_file.write_text(json.dumps({"http": svc.port}))
    print(f"edge-sink ready http={svc.port}", flush=True)
    await _until_signalled()
    await svc.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if args.cmd == "serve":
        tune_malloc()
        # the event loop and the batch worker share the GIL: with the default 5 ms switch
        # interval the loop waited up to 5 ms behind a batch; 0.5 ms took p99 from 26.4 to
        # 13.2 ms at 50 streams on one process, same CPU (docs/capacity.md)
        sys.setswitchinterval(0.0005)
        cfg = load_config(
            args.config,
            workers=args.workers,
            event_loop=args.loop,
            grpc_port=args.grpc_port,
            http_port=args.http_port,
            host=args.host,
        )
        if cfg.workers > 1 and args.worker_index is None:
            return _supervise(args, cfg, argv if argv is not None else sys.argv[1:])
        if cfg.event_loop == "uvloop":
            import uvloop

            return uvloop.run(_serve(args))
        return asyncio.run(_serve(args))
    if args.cmd == "sink":
        return asyncio.run(_sink(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
