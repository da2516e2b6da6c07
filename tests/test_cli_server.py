"""The ``edge-server`` process: starts, serves, and drains on SIGTERM."""

import asyncio
import signal
import sys
import time

from clients.analysis_client import AnalysisClient
from tests.procs import drain


async def test_sigterm_drains_and_exits_zero() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge_server.cli", "serve", "--grpc-port", "0", "--http-port", "0",
        "--log-level", "INFO",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert line.startswith("edge-server ready grpc=")
    port = int(line.split("grpc=")[1].split()[0])
    async with AnalysisClient(f"127.0.0.1:{port}") as c:
        await c.wait_ready()
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), 20)
    err = (await proc.stderr.read()).decode()
    await drain(proc)
    assert code == 0, err
    assert time.monotonic() - t0 < 12
    assert "draining 0 session(s)" in err
