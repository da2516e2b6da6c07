"""``edge-server serve --workers 2``: two processes share one gRPC port; a stream stays on one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import grpc
from seminote.edge.v1 import analysis_pb2 as pb
from seminote.edge.v1 import analysis_pb2_grpc as pb_grpc

from loadtests.procstat import children, rss_mb
from router.registry import Registry, open_registry
from tests.procs import spawn
from tests.redis_server import RedisServer
from tests.transport.helpers import audio, config, note_chunks


async def _stream_node(port: int) -> str:
    # a connection of its own (gRPC would otherwise share one between channels to one target)
    opts = [("grpc.use_local_subchannel_pool", 1)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=opts) as ch:
        call = pb_grpc.AudioAnalysisStub(ch).Analyze()
        await call.write(config(analyses=[pb.ANALYSIS_ONSETS]))
        started = await call.read()
        for i, chunk in enumerate(note_chunks()):
            await call.write(audio(i, chunk))
        await call.done_writing()
        msgs = []
        while (m := await call.read()) is not grpc.aio.EOF:
            msgs.append(m)
        onsets = [o.time_s for m in msgs if m.HasField("result") for o in m.result.onsets]
        assert len(onsets) == 3 and msgs[-1].HasField("summary")
        return str(started.started.node_id)


async def _registered_ports(reg: Registry, n: int) -> dict[str, int]:
    """The gRPC port each registered node advertises, once ``n`` are registered (<= 10 s)."""
    ports: dict[str, int] = {}
    for _ in range(100):
        ports = {
            r.info.node_id: int(r.info.address.rsplit(":", 1)[1]) for r in await reg.list_nodes()
        }
        if len(ports) == n:
            break
        await asyncio.sleep(0.1)
    return ports


async def test_two_workers_share_the_port_and_stop_together() -> None:
    proc, ports = await spawn(
        "edge_server.cli", "serve", "--grpc-port", "0", "--http-port", "0", "--workers", "2",
        "--node-id", "wk",
    )  # fmt: skip
    try:
        assert ports["workers"] == 2
        nodes = await asyncio.gather(*(_stream_node(ports["grpc"]) for _ in range(12)))
        # connections are spread by the kernel: with 12, both workers serve (p = 1 - 2^-11)
        assert set(nodes) == {"wk-w0", "wk-w1"}, nodes
        # the supervisor is the lean one (exec'd, standard library only): ~13 MB, where a
        # process with numpy, gRPC, aiortc and the models loaded holds ~130 MB
        cmdline = await asyncio.to_thread(Path(f"/proc/{proc.pid}/cmdline").read_text)
        assert "edge_server.workers" in cmdline, cmdline
        rss = await asyncio.to_thread(rss_mb, [proc.pid])
        assert rss < 40_000 / 1024, rss
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


async def test_each_worker_registers_a_port_of_its_own(redis_server: RedisServer) -> None:
    """With a registry, each worker registers a gRPC port only it listens on (not the shared
    one, which the kernel spreads by connection hash), so that a router's load-aware choice
    balances the workers; a stream to that port reaches that worker."""
    proc, ports = await spawn(
        "edge_server.cli", "serve", "--grpc-port", "0", "--http-port", "0", "--workers", "2",
        "--node-id", "wr", "--registry", redis_server.url,
    )  # fmt: skip
    reg = open_registry(redis_server.url)
    try:
        own = await _registered_ports(reg, 2)
        assert set(own) == {"wr-w0", "wr-w1"}, own
        assert ports["grpc"] not in own.values() and len(set(own.values())) == 2, (ports, own)
        for nid, port in own.items():
            assert await _stream_node(port) == nid
    finally:
        await reg.close()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


async def test_a_restarted_worker_keeps_its_own_port(redis_server: RedisServer) -> None:
    """A worker killed with SIGKILL is restarted by the supervisor on the port it had, so its
    registered address stays valid (a new port would be refused under the old id until the
    dead worker's registration expired)."""
    proc, ports = await spawn(
        "edge_server.cli", "serve", "--grpc-port", "0", "--http-port", "0", "--workers", "2",
        "--node-id", "wk9", "--registry", redis_server.url,
    )  # fmt: skip
    reg = open_registry(redis_server.url)

    def worker_pid(i: int) -> int | None:
        for pid in children(proc.pid):
            with contextlib.suppress(OSError):
                args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if (
                    b"--worker-index" in args
                    and args[args.index(b"--worker-index") + 1] == b"%d" % i
                ):
                    return pid
        return None

    try:
        port0 = (await _registered_ports(reg, 2))["wk9-w0"]
        old = await asyncio.to_thread(worker_pid, 0)
        assert old is not None
        os.kill(old, signal.SIGKILL)
        for _ in range(200):  # the supervisor polls every 0.5 s; a worker starts in a few s
            new = await asyncio.to_thread(worker_pid, 0)
            if new not in (None, old):
                break
            await asyncio.sleep(0.1)
        assert new not in (None, old)
        got = None
        for _ in range(100):
            with contextlib.suppress(grpc.aio.AioRpcError):
                got = await _stream_node(port0)
                break
            await asyncio.sleep(0.2)
        assert got == "wk9-w0"
        assert (await _registered_ports(reg, 2))["wk9-w0"] == port0
    finally:
        await reg.close()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
