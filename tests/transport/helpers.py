"""Raw-stub helpers for exercising the wire protocol, including what a good client won't send."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import grpc
import numpy as np
from seminote.edge.v1 import analysis_pb2 as pb
from seminote.edge.v1 import analysis_pb2_grpc as pb_grpc

from edge_server.app import EdgeNode
from tests.signals import struck_string

ONSETS_S = [0.3, 0.6, 0.9]


def stub(node: EdgeNode) -> tuple[grpc.aio.Channel, pb_grpc.AudioAnalysisStub]:
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{node.grpc_port}")
    return ch, pb_grpc.AudioAnalysisStub(ch)


def config(**kw: object) -> pb.AnalyzeRequest:
    args: dict[str, object] = dict(
        sample_rate_hz=44100, encoding=pb.AUDIO_ENCODING_PCM16_LE, channels=1
    )
    args.update(kw)
    return pb.AnalyzeRequest(config=pb.StreamConfig(**args))  # type: ignore[arg-type]


def audio(seq: int, data: bytes, t_ns: int = 1) -> pb.AnalyzeRequest:
    return pb.AnalyzeRequest(audio=pb.AudioChunk(seq=seq, data=data, capture_t_ns=t_ns))


def note_chunks(duration_s: float = 1.2, chunk: int = 1024) -> list[bytes]:
    """PCM16 chunks of three struck strings (C4, E4, G4) at ``ONSETS_S``."""
    x = struck_string(
        sample_rate_hz=44100,
        duration_s=duration_s,
        notes=list(zip(ONSETS_S, (60, 64, 67), strict=True)),
    )
    pcm = (x * 32767).astype("<i2").tobytes()
    return [pcm[i : i + 2 * chunk] for i in range(0, len(pcm), 2 * chunk)]


async def run(node: EdgeNode, requests: Iterable[pb.AnalyzeRequest]) -> list[pb.AnalyzeResponse]:
    """Send all requests, half-close, read everything; raises AioRpcError on a bad status."""
    ch, s = stub(node)
    async with ch:
        call = s.Analyze(iter(list(requests)))
        return [r async for r in call]


async def expect_status(
    node: EdgeNode, requests: Iterable[pb.AnalyzeRequest], code: grpc.StatusCode
) -> str:
    try:
        await asyncio.wait_for(run(node, requests), timeout=10)
    except grpc.aio.AioRpcError as e:
        assert e.code() == code, (e.code(), e.details())
        return e.details() or ""
    raise AssertionError(f"expected {code}, stream succeeded")


async def sessions_released(node: EdgeNode, timeout_s: float = 2.0) -> bool:
    """Whether the node holds no session within ``timeout_s``: a handler releases its session
    in its ``finally``, which may run just after the client has seen the final status."""
    for _ in range(int(timeout_s / 0.01)):
        if node.manager.active_count == 0:
            break
        await asyncio.sleep(0.01)
    return node.manager.active_count == 0


async def good_stream_works(node: EdgeNode) -> None:
    """A well-behaved session still gets correct results (other sessions unaffected)."""
    reqs = [config()] + [audio(i, c) for i, c in enumerate(note_chunks())]
    out = await run(node, reqs)
    onsets = [o.time_s for r in out if r.HasField("result") for o in r.result.onsets]
    np.testing.assert_allclose(onsets, ONSETS_S, atol=0.012)
    assert out[-1].HasField("summary")
