from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from edge_server.app import EdgeNode
from edge_server.config import ServerConfig
from edge_server.pipeline.manager import ManagerLimits
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("SEMINOTE_CORPUS", ROOT.parent / "shared" / "corpus"))


def corpus_public() -> Path:
    path = CORPUS / "public"
    if not (path / "manifest.json").exists():
        pytest.skip(f"corpus not found at {path} (set SEMINOTE_CORPUS)")
    return path


def make_config(**kw: object) -> ServerConfig:
    base = ServerConfig(
        node_id="test-node",
        grpc_port=0,
        http_port=0,
        shutdown_grace_s=1.0,
        write_stall_timeout_s=1.0,
        manager=ManagerLimits(max_sessions=8),
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def node() -> AsyncIterator[EdgeNode]:
    n = EdgeNode(make_config())
    await n.start()
    try:
        yield n
    finally:
        await n.stop(grace_s=0.5)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
