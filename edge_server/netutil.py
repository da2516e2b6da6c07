"""Small helpers shared by the node's and the sink's HTTP endpoints."""

from __future__ import annotations

from aiohttp import web


async def start_tcp_site(runner: web.AppRunner, host: str, port: int) -> int:
    """Set up ``runner``, listen on ``host:port`` and return the bound port (for port 0)."""
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server  # noqa: SLF001 - aiohttp exposes the bound port only here
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else port
