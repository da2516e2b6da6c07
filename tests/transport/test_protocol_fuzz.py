"""Random, mostly malformed streams against a real node: each ends with OK or a named error.

A seeded generator mixes valid and invalid configs (rates, encodings, channel counts,
analyses, session ids, resume requests) with valid and broken audio (empty, odd sizes, random
bytes, NaN and infinite floats, oversized chunks, gaps, duplicates, the largest sequence
number, a second config mid-stream). Every stream must end within its deadline with OK or
with a client-error status whose details say what was wrong; never INTERNAL or UNKNOWN (a
handler crash), never a hang. Afterwards the node still serves a good stream and holds no
session. The calls use gRPC's synchronous client in threads: grpc.aio's client can report its
own INTERNAL when a write races the server's error (grpc/grpc#36066), which would hide what
the server sent.
"""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
from seminote.edge.v1 import analysis_pb2 as pb
from seminote.edge.v1 import analysis_pb2_grpc as pb_grpc

from edge_server.app import EdgeNode
from tests.transport.helpers import good_stream_works, sessions_released

STREAMS = 160
#: what a client may get for what it sent (INTERNAL / UNKNOWN would be the node's own failure)
CLIENT_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.NOT_FOUND,
}
U64_MAX = 2**64 - 1


def _text(rng: random.Random) -> str:
    return rng.choice(
        ["", "ok-id_1.2", "a b", "../x", "é", "\x00", "x" * 128, "x" * 129, "ϬⷓΧ" * 30, "-"]
    )


def _config(rng: random.Random) -> pb.StreamConfig:
    if rng.random() < 0.6:  # valid
        enc = rng.choice([1, 2, 3])
        rates = [8000, 12000, 16000, 24000, 48000] if enc == 3 else [8000, 22050, 44100, 48000]
        return pb.StreamConfig(
            sample_rate_hz=rng.choice(rates),
            encoding=enc,  # type: ignore[arg-type]
            channels=rng.choice([1, 2]),
            analyses=rng.sample([1, 2, 3, 4], rng.randint(0, 4)),  # type: ignore[arg-type]
        )
    c = pb.StreamConfig(
        sample_rate_hz=rng.choice([0, 7999, 44100, 48001, 96000, 2**32 - 1]),
        encoding=rng.choice([0, 1, 2, 3, 7]),  # type: ignore[arg-type]
        channels=rng.choice([0, 1, 2, 3, 255]),
        analyses=[rng.choice([0, 1, 3, 4, 5, 9]) for _ in range(rng.randint(0, 4))],  # type: ignore[misc]
        session_id=_text(rng),
        client_name=_text(rng),
    )
    if rng.random() < 0.3:
        c.resume.SetInParent()
        if rng.random() < 0.5:
            c.resume.last_result_seq = rng.choice([0, 5, U64_MAX])
    return c


def _data(rng: random.Random, c: pb.StreamConfig) -> bytes:
    gen = np.random.default_rng(rng.getrandbits(32))
    k = rng.random()
    if k < 0.1:
        return b""
    if k < 0.2:
        return gen.bytes(rng.choice([1, 3, 7, 1023, 100_000, 1_200_000]))
    channels = max(int(c.channels), 1)
    n = rng.choice([1, 64, 441, 1024, 4096]) * channels
    if c.encoding == pb.AUDIO_ENCODING_FLOAT32_LE:
        x = (gen.standard_normal(n) * 0.1).astype("<f4")
        if rng.random() < 0.3:
            x[rng.randrange(n)] = rng.choice([np.nan, np.inf, -np.inf])
        return x.tobytes()
    if c.encoding == pb.AUDIO_ENCODING_OPUS:
        return gen.bytes(rng.randint(1, 1500))
    return (gen.standard_normal(n) * 3000).astype("<i2").tobytes()


def _requests(rng: random.Random) -> list[pb.AnalyzeRequest]:
    c = _config(rng)
    k = rng.random()
    reqs = [pb.AnalyzeRequest(config=c)] if k < 0.9 else [] if k < 0.95 else [pb.AnalyzeRequest()]
    seq = 0
    for _ in range(rng.randint(0, 25)):
        k = rng.random()
        if k < 0.03:
            reqs.append(pb.AnalyzeRequest(config=_config(rng)))
            continue
        if k < 0.05:
            reqs.append(pb.AnalyzeRequest())
            continue
        s = seq
        if k < 0.15:
            s = min(rng.choice([seq + rng.randint(1, 50), max(seq - 1, 0), U64_MAX]), U64_MAX)
        seq = min(s + 1, U64_MAX)
        chunk = pb.AudioChunk(
            seq=s, data=_data(rng, c), capture_t_ns=rng.choice([0, -1, 2**63 - 1, -(2**63)])
        )
        reqs.append(pb.AnalyzeRequest(audio=chunk))
    return reqs


def _outcome(stub: pb_grpc.AudioAnalysisStub, seed: int) -> tuple[str, str]:
    reqs = _requests(random.Random(seed))
    try:
        for _ in stub.Analyze(iter(reqs), timeout=30.0):
            pass
    except grpc.RpcError as e:
        return e.code().name, e.details() or ""  # type: ignore[attr-defined]
    return "OK", ""


async def test_random_streams_end_with_ok_or_a_named_error(node: EdgeNode) -> None:
    with grpc.insecure_channel(
        f"127.0.0.1:{node.grpc_port}", options=[("grpc.max_send_message_length", 4 * 2**20)]
    ) as channel:
        stub = pb_grpc.AudioAnalysisStub(channel)
        with ThreadPoolExecutor(8) as pool:
            loop = asyncio.get_running_loop()
            outcomes = await asyncio.gather(
                *(loop.run_in_executor(pool, _outcome, stub, seed) for seed in range(STREAMS))
            )
    allowed = {c.name for c in CLIENT_ERRORS} | {"OK"}
    bad = [(seed, o) for seed, o in enumerate(outcomes) if o[0] not in allowed]
    assert not bad, bad[:5]
    assert all(details for code, details in outcomes if code != "OK")
    codes = {code for code, _ in outcomes}
    # the generator reaches the paths it is meant to: good streams and each kind of refusal
    assert {"OK", "INVALID_ARGUMENT", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED"} <= codes
    assert await sessions_released(node)
    # the burst may have left the node refusing new sessions as overloaded (its smoothed
    # wait decays within about a second once idle): a good stream is served once it is calm
    for _ in range(100):
        if not node.batcher.overloaded():
            break
        await asyncio.sleep(0.05)
    assert not node.batcher.overloaded()
    await good_stream_works(node)
