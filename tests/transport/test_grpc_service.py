from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from seminote.edge.v1 import analysis_pb2 as pb
from seminote.edge.v1 import analysis_pb2_grpc as pb_grpc

from edge_server.app import EdgeNode
from tests.conftest import make_config
from tests.transport.helpers import (
    ONSETS_S,
    audio,
    config,
    expect_status,
    good_stream_works,
    note_chunks,
    run,
    sessions_released,
    stub,
)


async def test_stream_returns_started_results_in_order_and_summary(node: EdgeNode) -> None:
    chunks = note_chunks()
    out = await run(
        node, [config(session_id="happy")] + [audio(i, c, 1000 + i) for i, c in enumerate(chunks)]
    )
    assert out[0].WhichOneof("kind") == "started"
    st = out[0].started
    assert (st.session_id, st.node_id, st.analysis_sample_rate_hz) == ("happy", "test-node", 22050)
    assert st.max_chunk_bytes == int(0.5 * 44100) * 2
    results = [r.result for r in out if r.HasField("result")]
    assert [r.seq for r in results] == list(range(len(chunks)))
    assert [r.capture_t_ns for r in results] == [1000 + i for i in range(len(chunks))]
    assert all(r.server_processing_ns > 0 for r in results)
    onsets = [o.time_s for r in results for o in r.onsets]
    np.testing.assert_allclose(onsets, ONSETS_S, atol=0.012)
    hops = sum(len(r.features.rms_db) for r in results)
    assert hops == len(b"".join(chunks)) // 2 // 2 // 128
    assert out[-1].summary.chunks_processed == len(chunks)
    assert out[-1].summary.onsets == 3
    assert node.manager.active_count == 0


async def test_get_session_returns_what_was_produced(node: EdgeNode) -> None:
    await run(node, [config(session_id="gs")] + [audio(i, c) for i, c in enumerate(note_chunks())])
    ch, s = stub(node)
    async with ch:
        r = await s.GetSession(pb.GetSessionRequest(session_id="gs"))
        assert not r.active and len(r.onsets) == 3 and r.summary.onsets == 3
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await s.GetSession(pb.GetSessionRequest(session_id="nope"))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await s.GetSession(pb.GetSessionRequest(session_id="bad id!"))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "session_id" in (e.value.details() or "")


IA = grpc.StatusCode.INVALID_ARGUMENT
FP = grpc.StatusCode.FAILED_PRECONDITION
RE = grpc.StatusCode.RESOURCE_EXHAUSTED
NAN_F32 = np.array([0, np.nan], "<f4").tobytes()
F32 = pb.AUDIO_ENCODING_FLOAT32_LE

BAD_INPUTS = {
    "audio-before-config": ([audio(0, b"\0\0")], FP, "first message must set 'config'"),
    "second-config": ([config(), config()], FP, "config: already received"),
    "rate-too-high": (
        [config(sample_rate_hz=96000)],
        IA,
        "config.sample_rate_hz=96000 is out of range [8000, 48000]",
    ),
    "rate-too-low": ([config(sample_rate_hz=4000)], IA, "config.sample_rate_hz=4000"),
    "channels": ([config(channels=3)], IA, "config.channels=3 is out of range [1, 2]"),
    "unknown-encoding": ([config(encoding=7)], IA, "config.encoding=7"),
    "unspecified-encoding": ([config(encoding=0)], IA, "config.encoding=0"),
    "opus-at-44k1": (
        [config(encoding=pb.AUDIO_ENCODING_OPUS)],
        IA,
        "config.sample_rate_hz=44100 is not an Opus rate",
    ),
    "unknown-analysis": ([config(analyses=[pb.ANALYSIS_FEEDBACK])], IA, "config.analyses"),
    "bad-session-id": ([config(session_id="no spaces")], IA, "config.session_id"),
    "odd-pcm16": ([config(), audio(0, b"\0" * 1023)], IA, "not a multiple of 2"),
    "partial-stereo-frame": ([config(channels=2), audio(0, b"\0" * 6)], IA, "not a multiple of 4"),
    "chunk-over-limit": (
        [config(), audio(0, b"\0" * 50_000)],
        RE,
        "limit for this stream is 44100 bytes",
    ),
    "message-over-grpc-limit": ([config(), audio(0, b"\0" * (2 << 20))], RE, ""),
    "nan-float32": (
        [config(encoding=F32), audio(0, NAN_F32)],
        IA,
        "non-finite FLOAT32 value at sample 1",
    ),
    "empty-request": ([config(), pb.AnalyzeRequest()], IA, "request: empty"),
    "no-config": ([], IA, "stream closed before 'config'"),
}


@pytest.mark.parametrize(
    ("requests", "code", "needle"), list(BAD_INPUTS.values()), ids=list(BAD_INPUTS)
)
async def test_bad_input_gets_status_naming_the_field(
    node: EdgeNode, requests: list[pb.AnalyzeRequest], code: grpc.StatusCode, needle: str
) -> None:
    details = await expect_status(node, requests, code)
    assert needle in details
    assert await sessions_released(node)
    await good_stream_works(node)


async def test_sequence_gaps_and_duplicates_are_reported_and_survived(node: EdgeNode) -> None:
    chunks = note_chunks()
    reqs = [config()]
    seqs = [0, 1, 1, 0, 5, 6, 7] + list(range(8, len(chunks) + 3))
    for seq, c in zip(seqs, chunks, strict=False):
        reqs.append(audio(seq, c))
    out = await run(node, reqs)
    warnings = [r.warning for r in out if r.HasField("warning")]
    codes = [w.code for w in warnings]
    assert codes == [
        pb.WARNING_CODE_DUPLICATE_SEQUENCE,
        pb.WARNING_CODE_DUPLICATE_SEQUENCE,
        pb.WARNING_CODE_SEQUENCE_GAP,
    ]
    assert "audio.seq=5 skips 3 chunk(s)" in warnings[2].message
    s = out[-1].summary
    assert (s.chunks_dropped, s.chunks_lost) == (2, 3)


async def test_duplicate_active_session_id_and_capacity(node: EdgeNode) -> None:
    ch, s = stub(node)
    async with ch:
        calls = []
        for i in range(node.config.manager.max_sessions):
            call = s.Analyze()
            await call.write(config(session_id=f"cap{i}"))
            assert (await call.read()).HasField("started")
            calls.append(call)
            if i == 0:
                dup_details = await expect_status(
                    node, [config(session_id="cap0")], grpc.StatusCode.ALREADY_EXISTS
                )
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        details = await expect_status(
            node, [config(session_id="more")], grpc.StatusCode.RESOURCE_EXHAUSTED
        )
        assert loop.time() - t0 < 0.5
        assert "max_sessions=8" in details and "cap0" in dup_details
        for call in calls:
            await call.done_writing()
            while (msg := await call.read()) is not grpc.aio.EOF:
                last = msg
            assert last.HasField("summary")
    assert node.manager.active_count == 0
    await good_stream_works(node)


async def test_client_cancel_mid_stream_releases_the_session(node: EdgeNode) -> None:
    ch, s = stub(node)
    async with ch:
        call = s.Analyze()
        await call.write(config(session_id="cancelme"))
        await call.read()
        for i, c in enumerate(note_chunks()[:10]):
            await call.write(audio(i, c))
            await call.read()
        assert node.manager.active_count == 1
        other = asyncio.create_task(good_stream_works(node))
        call.cancel()
        await other
    assert await sessions_released(node)
    assert node.metrics.sessions_closed.labels("cancelled")._value.get() == 1


async def test_client_that_stops_reading_is_ended_without_hurting_others(node: EdgeNode) -> None:
    """Sends small chunks and never reads: once the HTTP/2 window is full the server's write
    stalls; after write_stall_timeout_s (1 s here) the server frees the session. The client's
    BDP probing is off so its window stays at the HTTP/2 default and the stall comes fast."""
    ch = grpc.aio.insecure_channel(
        f"127.0.0.1:{node.grpc_port}", options=[("grpc.http2.bdp_probe", 0)]
    )
    s = pb_grpc.AudioAnalysisStub(ch)
    async with ch:
        call = s.Analyze()
        await call.write(config(session_id="deaf"))
        small = b"\x00\x01" * 256

        async def flood() -> None:
            for i in range(200_000):
                await call.write(audio(i, small))

        flooder = asyncio.create_task(flood())
        await asyncio.sleep(0.2)
        assert node.manager.active_count == 1
        # meanwhile a normal session streams to completion
        await good_stream_works(node)
        closed = node.metrics.sessions_closed.labels("stalled")
        for _ in range(300):
            if closed._value.get() == 1:
                break
            await asyncio.sleep(0.1)
        assert closed._value.get() == 1
        assert node.manager.active_count == 0
        flooder.cancel()  # cancels the client's call too
        await asyncio.gather(flooder, return_exceptions=True)
    await good_stream_works(node)


async def test_client_that_stops_sending_is_ended_and_its_session_freed() -> None:
    """A stream that sends nothing for read_idle_timeout_s (0.4 s here) ends with
    DEADLINE_EXCEEDED naming the setting, and its session is closed: after its config, after
    some audio, and before any config. A stream sending every 0.2 s is not idle."""
    n = EdgeNode(make_config(read_idle_timeout_s=0.4))
    await n.start()
    try:
        ch, s = stub(n)
        async with ch:
            chunks = note_chunks()
            for first in ([config()], [config(), audio(0, chunks[0])], []):
                call = s.Analyze()
                for r in first:
                    await call.write(r)
                t0 = asyncio.get_running_loop().time()
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    async for _ in call:
                        pass
                waited_s = asyncio.get_running_loop().time() - t0
                assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert "no message for 0.4 s (read_idle_timeout_s)" in (e.value.details() or "")
                assert 0.3 < waited_s < 2.0, waited_s
                assert await sessions_released(n)
            # paced under the timeout: served to the end
            call = s.Analyze()
            await call.write(config())
            for i, c in enumerate(chunks[:4]):
                await asyncio.sleep(0.2)
                await call.write(audio(i, c))
            await call.done_writing()
            out = [r async for r in call]
            assert out[-1].HasField("summary") and out[-1].summary.chunks_processed == 4
        assert n.metrics.sessions_closed.labels("deadline_exceeded")._value.get() == 2
        await good_stream_works(n)
    finally:
        await n.stop(grace_s=0.5)


async def test_health_and_reflection(node: EdgeNode) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{node.grpc_port}") as ch:
        h = health_pb2_grpc.HealthStub(ch)
        for svc in ("", "seminote.edge.v1.AudioAnalysis"):
            r = await h.Check(health_pb2.HealthCheckRequest(service=svc))
            assert r.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        req = reflection_pb2.ServerReflectionRequest(list_services="")
        names = set()
        async for resp in refl.ServerReflectionInfo(iter([req])):
            names |= {sv.name for sv in resp.list_services_response.service}
        assert {"seminote.edge.v1.AudioAnalysis", "grpc.health.v1.Health"} <= names


async def test_graceful_stop_reports_not_serving_and_refuses_new_streams() -> None:
    n = EdgeNode(make_config(shutdown_grace_s=1.0))
    await n.start()
    ch, s = stub(n)
    async with ch:
        call = s.Analyze()
        await call.write(config(session_id="inflight"))
        await call.read()
        stopping = asyncio.create_task(n.stop())
        await asyncio.sleep(0.1)
        assert n._health()["status"] == "NOT_SERVING"
        h = health_pb2_grpc.HealthStub(ch)
        # a new stream is refused while draining
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await run(n, [config(session_id="late")])
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        # in-flight stream keeps working during the grace period
        await call.write(audio(0, b"\x00\x00" * 1024))
        assert (await call.read()).HasField("result")
        await call.done_writing()
        last = await call.read()
        assert last.HasField("summary")
        assert await call.read() is grpc.aio.EOF
        await stopping
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await h.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
