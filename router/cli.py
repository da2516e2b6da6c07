"""``edge-router``: route clients to edge nodes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .registry import RegistryCache, open_registry
from .service import RouterNode
from .strategies import STRATEGIES


async def _serve(a: argparse.Namespace) -> int:
    cache = RegistryCache(open_registry(a.registry), poll_s=a.poll_s)
    node = RouterNode(
        cache,
        host=a.host,
        grpc_port=a.grpc_port,
        http_port=a.http_port,
        strategy=a.strategy,
        ttl_s=a.ttl_s,
    )
    await node.start()
    print(f"edge-router ready grpc={node.grpc_port} http={node.http_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await node.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge-router", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument(
        "--registry", required=True, help="redis://HOST:PORT/DB, consul://HOST:PORT, static:FILE"
    )
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--grpc-port", type=int, default=50061)
    s.add_argument("--http-port", type=int, default=8081)
    s.add_argument("--strategy", default="weighted", choices=STRATEGIES)
    s.add_argument("--ttl-s", type=float, default=3.0, help="TTL for nodes registered over HTTP")
    s.add_argument("--poll-s", type=float, default=0.5, help="registry refresh at least this often")
    s.add_argument("--log-level", default="INFO")
    a = p.parse_args(argv)
    logging.basicConfig(
        level=a.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    return asyncio.run(_serve(a))


if __name__ == "__main__":
    sys.exit(main())
