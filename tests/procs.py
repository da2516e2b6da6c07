"""Start the project's entry points as real processes (``python -m ...``) for tests."""

from __future__ import annotations

import asyncio
import contextlib
import sys


async def spawn(
    *args: str, ready_timeout_s: float = 60.0
) -> tuple[asyncio.subprocess.Process, dict[str, int]]:
    """Start ``python -m <args>`` and wait for its ``... ready k=v ...`` line; returns the process
    and the ports it printed."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        "--log-level",
        "WARNING",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), ready_timeout_s)).decode()
    assert "ready" in line, line
    ports = {k: int(v) for k, v in (p.split("=") for p in line.split()[2:])}
    return proc, ports


async def edge_node(node_id: str, *extra: str) -> tuple[asyncio.subprocess.Process, dict[str, int]]:
    return await spawn(
        "edge_server.cli",
        "serve",
        "--grpc-port",
        "0",
        "--http-port",
        "0",
        "--node-id",
        node_id,
        *extra,
    )


async def stop(proc: asyncio.subprocess.Process, *, kill: bool = False) -> None:
    if proc.returncode is None:
        if kill:
            proc.kill()
        else:
            proc.terminate()
    await reap(proc)


async def reap(proc: asyncio.subprocess.Process) -> None:
    """Wait for a signalled process (killed after 15 s), then read its stdout to its end, so
    that its pipe transport closes while the event loop runs (left open, it is closed by the
    garbage collector after the loop is gone: 'Event loop is closed' warnings in a later test)."""
    try:
        await asyncio.wait_for(proc.wait(), 15)
    except TimeoutError:
        proc.kill()
        await proc.wait()
    await drain(proc)


async def drain(proc: asyncio.subprocess.Process) -> None:
    """Read an exited process's stdout to its end (see :func:`reap`)."""
    if proc.stdout is not None:
        with contextlib.suppress(TimeoutError):  # a child still holding the pipe: give up
            await asyncio.wait_for(proc.stdout.read(), 5)
