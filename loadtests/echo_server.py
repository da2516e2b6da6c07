"""Transport floor: the same proto and gRPC options as the edge server, no analysis.

Answers every chunk with a ChunkResult that echoes seq and capture time, so a client measures
exactly what gRPC + asyncio cost. ``python -m loadtests.echo_server --port 0``
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from seminote.edge.v1 import analysis_pb2 as pb
from seminote.edge.v1 import analysis_pb2_grpc as pb_grpc

from edge_server.transport.grpc_server import server_options


class EchoService(pb_grpc.AudioAnalysisServicer):
    async def Analyze(  # noqa: N802
        self, request_iterator: AsyncIterator[pb.AnalyzeRequest], context: Any
    ) -> None:
        async for req in request_iterator:
            t0 = time.perf_counter_ns()
            if req.HasField("config"):
                await context.write(pb.AnalyzeResponse(started=pb.StreamStarted(session_id="echo")))
            else:
                a = req.audio
                r = pb.ChunkResult(seq=a.seq, capture_t_ns=a.capture_t_ns)
                r.server_processing_ns = time.perf_counter_ns() - t0
                await context.write(pb.AnalyzeResponse(result=r))
        await context.write(pb.AnalyzeResponse(summary=pb.StreamSummary(session_id="echo")))


async def serve(port: int, *, reuse_port: bool = False) -> None:
    server = grpc.aio.server(options=server_options(reuse_port=reuse_port))
    pb_grpc.add_AudioAnalysisServicer_to_server(EchoService(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"echo-server ready grpc={bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", "--grpc-port", dest="port", type=int, default=0)
    p.add_argument("--http-port", type=int, default=0, help="ignored (no HTTP side)")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    p.add_argument("--worker-index", type=int, default=None)
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    args = p.parse_args()
    if args.workers > 1 and args.worker_index is None:
        from edge_server.workers import Supervisor

        sup = Supervisor(n=args.workers, argv=["--loop", args.loop], host="127.0.0.1",
                         grpc_port=args.port, http_port=0,
                         command=("loadtests.echo_server",))  # fmt: skip
        sup.start()
        print(f"echo-server ready grpc={sup.grpc_port} workers={args.workers}", flush=True)
        sys.exit(sup.run())
    coro = serve(args.port, reuse_port=args.worker_index is not None)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)


if __name__ == "__main__":
    main()
