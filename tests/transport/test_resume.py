"""Session resume over real gRPC in process (memory store: resume on the same node)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from seminote.edge.v1 import analysis_pb2 as pb

from clients.analysis_client import AnalysisClient, StreamOptions
from clients.demo import EXCERPT
from clients.results import StreamResult
from clients.resume import Backoff, ResilientStream
from clients.wav import read_wav
from edge_server.app import EdgeNode
from edge_server.pipeline.session import PendingChunk, Session
from tests.transport.helpers import (
    audio,
    config,
    expect_status,
    good_stream_works,
    note_chunks,
    run,
    stub,
)


def resume_config(sid: str, last: int | None = None, **kw: object) -> pb.AnalyzeRequest:
    req = config(session_id=sid, **kw)
    req.config.resume.SetInParent()
    if last is not None:
        req.config.resume.last_result_seq = last
    return req


async def _first_part(node: EdgeNode, sid: str, n: int) -> list[pb.AnalyzeResponse]:
    """Stream ``n`` chunks, read their results, then drop the connection (no half-close)."""
    ch, s = stub(node)
    out: list[pb.AnalyzeResponse] = []
    chunks = note_chunks()
    async with ch:
        call = s.Analyze()
        await call.write(config(session_id=sid))
        out.append(await call.read())
        for i in range(n):
            await call.write(audio(i, chunks[i]))
            out.append(await call.read())
        call.cancel()
    for _ in range(100):  # the node notices the cancel
        if node.manager.active_count == 0:
            break
        await asyncio.sleep(0.01)
    return out


async def test_resume_continues_with_no_result_missing_or_repeated(node: EdgeNode) -> None:
    chunks = note_chunks()
    whole = await run(node, [config()] + [audio(i, c) for i, c in enumerate(chunks)])
    ref = {r.result.seq: r.result for r in whole if r.HasField("result")}

    first = await _first_part(node, "res-1", 30)
    got = {r.result.seq: r.result for r in first if r.HasField("result")}
    last = max(got)
    assert got[last].checkpoint_seq == 23  # a snapshot every 8 chunks: 7, 15, 23
    # the client lost the last 3 results in flight: it says it has up to 26
    resumed = await run(
        node,
        [resume_config("res-1", last=26)] + [audio(i, chunks[i]) for i in range(24, len(chunks))],
    )
    started = resumed[0].started
    assert started.resumed and started.next_audio_seq == 24 and started.replayed_results == 0
    after = [r.result for r in resumed if r.HasField("result")]
    assert [r.seq for r in after] == list(range(27, len(chunks)))
    for r in after:  # identical analysis to the uninterrupted stream
        assert list(r.onsets) == list(ref[r.seq].onsets)
        assert list(r.features.spectral_flux) == list(ref[r.seq].features.spectral_flux)
    summary = resumed[-1].summary
    assert summary.chunks_processed == len(chunks) and summary.chunks_lost == 0


async def test_resume_replays_stored_results_the_client_missed(node: EdgeNode) -> None:
    chunks = note_chunks()
    await _first_part(node, "res-2", 20)  # snapshot at 15
    out = await run(
        node, [resume_config("res-2", last=9)] + [audio(i, chunks[i]) for i in range(16, 25)]
    )
    assert out[0].started.replayed_results == 6  # 10..15 from the store
    results = [r.result for r in out if r.HasField("result")]
    assert [r.seq for r in results] == list(range(10, 25))
    assert all(r.replayed for r in results[:6]) and not results[6].replayed


async def test_resume_bad_input_gets_clear_errors(node: EdgeNode) -> None:
    await _first_part(node, "res-3", 10)
    msg = await expect_status(node, [resume_config("bad id!")], grpc.StatusCode.INVALID_ARGUMENT)
    assert "config.session_id" in msg
    msg = await expect_status(node, [resume_config("")], grpc.StatusCode.INVALID_ARGUMENT)
    assert "required with config.resume" in msg
    msg = await expect_status(node, [resume_config("never-seen")], grpc.StatusCode.NOT_FOUND)
    assert "no stored session" in msg
    msg = await expect_status(
        node, [resume_config("res-3", last=500)], grpc.StatusCode.OUT_OF_RANGE
    )
    assert "config.resume.last_result_seq=500" in msg and "0..9" in msg
    msg = await expect_status(
        node, [resume_config("res-3", sample_rate_hz=48000)], grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "config.sample_rate_hz=48000" in msg
    await good_stream_works(node)  # other sessions unaffected


async def test_a_resume_supersedes_the_stream_still_open(node: EdgeNode) -> None:
    chunks = note_chunks()
    ch, s = stub(node)
    async with ch:
        old = s.Analyze()
        await old.write(config(session_id="res-4"))
        await old.read()
        for i in range(9):
            await old.write(audio(i, chunks[i]))
            await old.read()
        new = await run(
            node, [resume_config("res-4", last=8)] + [audio(i, chunks[i]) for i in range(9, 12)]
        )
        assert [r.result.seq for r in new if r.HasField("result")] == [9, 10, 11]
        await old.write(audio(9, chunks[9]))
        try:
            while True:
                await old.read()
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.ABORTED
            assert "resumed by a newer stream" in (e.details() or "")


class CuttableProxy:
    """TCP proxy in front of the node; ``cut()`` drops every open connection (a phone losing
    its network) while new connections keep working."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [w, uw]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(r, uw), pipe(ur, w))

    def cut(self) -> None:
        for w in self._writers:
            w.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_client_library_resumes_by_itself_after_a_dropped_connection(
    node: EdgeNode,
) -> None:
    wav = read_wav(EXCERPT)
    whole = StreamResult()
    async with AnalysisClient(f"127.0.0.1:{node.grpc_port}") as c:
        async for ev in c.stream(wav, StreamOptions()):
            whole.add(ev)
    proxy = CuttableProxy(node.grpc_port)
    await proxy.start()
    got = StreamResult()
    stream = ResilientStream([f"127.0.0.1:{proxy.port}"], wav, StreamOptions())
    try:
        async for ev in stream.events():
            got.add(ev)
            if got.chunks == 300 and stream.stats.connects == 1:
                proxy.cut()
    finally:
        await proxy.close()
    assert stream.stats.resumes == 1 and stream.stats.resent_chunks > 0
    assert got.seq_audit() == {"count": 862, "duplicates": 0, "missing": 0}
    assert got.onset_times_s() == whole.onset_times_s()
    assert got.summary is not None and got.summary.chunks_processed == 862


async def test_client_library_gives_up_on_a_chunk_that_fails_every_time(
    node: EdgeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that fails the same chunk on every resume (an unexpected error: UNKNOWN, which
    is retried) is not retried forever: a reconnect is not progress, a new result is. The
    client gives up give_up_after_s after the last result, with the node's error."""
    real = Session.decode

    def poisoned(self: Session, chunk: PendingChunk) -> object:
        if chunk.seq == 40:
            raise RuntimeError("poison chunk")
        return real(self, chunk)

    monkeypatch.setattr(Session, "decode", poisoned)
    stream = ResilientStream(
        [f"127.0.0.1:{node.grpc_port}"],
        read_wav(EXCERPT),
        StreamOptions(),
        backoff=Backoff(initial_s=0.1),
        give_up_after_s=1.0,
    )
    got = StreamResult()

    async def consume() -> None:
        async for ev in stream.events():
            got.add(ev)

    t0 = asyncio.get_running_loop().time()
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await asyncio.wait_for(consume(), 20.0)  # it retried forever before
    # the handler's error is UNKNOWN; grpc.aio's client may report INTERNAL instead when a
    # write races it (grpc/grpc#36066)
    assert e.value.code() in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
    assert got.seq_audit()["count"] == 40  # seqs 0-39, each once
    assert stream.stats.resumes >= 2
    assert asyncio.get_running_loop().time() - t0 < 10.0
