"""Admission by load, flow-control advice on the wire, and a client that acts on it."""

from __future__ import annotations

import time

import grpc
import pytest
from seminote.edge.v1 import analysis_pb2 as pb

from clients.analysis_client import AnalysisClient, FlowControlEvent, StreamOptions
from clients.results import StreamResult
from clients.wav import WavAudio
from edge_server.app import EdgeNode
from tests.transport.helpers import audio, config, good_stream_works, note_chunks, stub


async def test_overloaded_node_refuses_new_sessions_fast(node: EdgeNode) -> None:
    node.batcher.overloaded = lambda: True  # type: ignore[method-assign]
    ch, s = stub(node)
    async with ch:
        await ch.channel_ready()
        t0 = time.perf_counter()
        call = s.Analyze(iter([config()]))
        with pytest.raises(grpc.aio.AioRpcError) as e:
            async for _ in call:
                pass
        refused_s = time.perf_counter() - t0
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "overloaded" in (e.value.details() or "")
    assert refused_s < 0.1, refused_s
    node.batcher.overloaded = lambda: False  # type: ignore[method-assign]
    await good_stream_works(node)


async def test_admitted_stream_is_told_to_coarsen_and_then_calm(node: EdgeNode) -> None:
    ch, s = stub(node)
    chunks = note_chunks()
    async with ch:
        call = s.Analyze()
        await call.write(config())
        started = await call.read()
        assert started.started.credit_chunks == node.config.credit_chunks
        node.batcher.overloaded = lambda: True  # type: ignore[method-assign]
        await call.write(audio(0, chunks[0]))
        got = [await call.read(), await call.read()]
        flow = [m.flow for m in got if m.HasField("flow")]
        assert len(flow) == 1 and any(m.HasField("result") for m in got)
        assert flow[0].advice == pb.FlowControl.ADVICE_COARSEN
        assert flow[0].suggested_chunk_frames == 2048  # twice the 1024-frame chunk
        await call.done_writing()
        rest = []
        while (m := await call.read()) is not grpc.aio.EOF:
            rest.append(m)
        assert rest[-1].HasField("summary")


async def test_realtime_client_merges_chunks_when_asked(node: EdgeNode) -> None:
    """The same audio arrives in fewer messages; every sample is analysed, onsets unchanged."""
    pcm = b"".join(note_chunks())
    wav = WavAudio(pcm, "PCM16_LE", 44100, 1)
    n_chunks = len(note_chunks())
    # overloaded once the session is in (admission sees 0 active sessions)
    node.batcher.overloaded = lambda: node.manager.active_count > 0  # type: ignore[method-assign]
    node.service._flow._calm_s = 60.0  # keep the advice for the whole stream
    result = StreamResult()
    async with AnalysisClient(f"127.0.0.1:{node.grpc_port}") as c:
        async for ev in c.stream(wav, StreamOptions(realtime=True)):
            result.add(ev)
    assert result.flow and isinstance(result.flow[0], FlowControlEvent)
    assert result.summary is not None
    assert result.summary.stream_time_s == pytest.approx(len(pcm) / 2 / 44100)
    assert result.chunks <= n_chunks * 0.6  # chunks merged (2x, then larger)
    times = sorted(o.time_s for o in result.onsets)
    assert times == pytest.approx([0.3, 0.6, 0.9], abs=0.012)


async def test_client_reports_the_nodes_refusal_not_internal(node: EdgeNode) -> None:
    """A refused stream reads as the node's status through the client, every time. (The
    client sends audio only after StreamStarted: an audio write racing the refusal made
    grpc.aio report INTERNAL "Internal error from Core" in 37 of 40 tries, grpc/grpc#36066.)"""
    wav = WavAudio(b"".join(note_chunks()), "PCM16_LE", 44100, 1)
    node.batcher.overloaded = lambda: True  # type: ignore[method-assign]
    async with AnalysisClient(f"127.0.0.1:{node.grpc_port}") as c:
        for _ in range(10):
            with pytest.raises(grpc.aio.AioRpcError) as e:
                async for _ in c.stream(wav, StreamOptions(chunk_frames=256)):
                    pass
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value.details()
            assert "overloaded" in (e.value.details() or "")


async def test_client_cuts_chunks_to_the_nodes_largest(node: EdgeNode) -> None:
    """Asked for chunks larger than the node takes (0.5 s), the client sends the node's
    largest (StreamStarted.max_chunk_bytes), from the first chunk on; all audio is analysed."""
    pcm = b"".join(note_chunks(duration_s=3.0))
    wav = WavAudio(pcm, "PCM16_LE", 44100, 1)
    result = StreamResult()
    async with AnalysisClient(f"127.0.0.1:{node.grpc_port}") as c:
        async for ev in c.stream(wav, StreamOptions(chunk_frames=3 * 44100)):
            result.add(ev)
    assert result.summary is not None and not result.warnings
    assert result.summary.stream_time_s == pytest.approx(3.0)
    assert result.chunks == 6  # 3 s in chunks of at most 0.5 s
