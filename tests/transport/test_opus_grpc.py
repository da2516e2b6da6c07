"""Opus over gRPC: onsets as good as PCM, and garbage packets never end a session."""

from __future__ import annotations

import json
import random

import mir_eval
import numpy as np
import pytest
from seminote.edge.v1 import analysis_pb2 as pb

from clients.analysis_client import AnalysisClient, ChunkResultEvent, StreamOptions
from clients.opus import encode_opus
from clients.wav import WavAudio, read_wav
from edge_server.app import EdgeNode
from tests.conftest import corpus_public
from tests.signals import piano_like
from tests.transport.helpers import audio, config, run

ONSETS = [0.3, 0.75, 1.2, 1.6, 2.1, 2.4]


async def _onsets(node: EdgeNode, a: object) -> list[float]:
    out: list[float] = []
    async with AnalysisClient(f"127.0.0.1:{node.grpc_port}") as c:
        async for ev in c.stream(a, StreamOptions(analyses=("ONSETS",))):  # type: ignore[arg-type]
            if isinstance(ev, ChunkResultEvent):
                out += [o.time_s for o in ev.onsets]
    return out


def _wav(x: np.ndarray, rate: int) -> WavAudio:
    return WavAudio((x * 32767).astype("<i2").tobytes(), "PCM16_LE", rate, 1)


async def test_opus_stream_finds_the_onsets(node: EdgeNode) -> None:
    x = piano_like(
        sample_rate_hz=48000,
        duration_s=3.0,
        onsets_s=ONSETS,
        f0_hz=[262.0, 330.0, 392.0, 523.0, 196.0, 440.0],
    )
    got = await _onsets(node, encode_opus(_wav(x, 48000)))
    assert len(got) == len(ONSETS)
    np.testing.assert_allclose(got, ONSETS, atol=0.02)


async def test_garbage_packets_are_counted_and_the_session_goes_on(node: EdgeNode) -> None:
    x = piano_like(
        sample_rate_hz=48000,
        duration_s=3.0,
        onsets_s=ONSETS,
        f0_hz=[262.0, 330.0, 392.0, 523.0, 196.0, 440.0],
    )
    packets = list(encode_opus(_wav(x, 48000)).packets)
    rng = random.Random(5)
    reqs = [config(sample_rate_hz=48000, encoding=pb.AUDIO_ENCODING_OPUS)]
    seq = 0
    n_bad = 10_000
    for i in range(n_bad):  # 10,000 random or truncated packets first
        if i % 2:
            p = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))
        else:
            g = rng.choice(packets)
            p = g[: rng.randrange(0, len(g))]
        reqs.append(audio(seq, p))
        seq += 1
    first_good = seq
    for p in packets:
        reqs.append(audio(seq, p))
        seq += 1
    out = await run(node, reqs)
    summary = out[-1].summary
    warnings = [r.warning for r in out if r.HasField("warning")]
    assert summary.chunks_malformed == len(warnings) > 1000
    assert all(w.code == pb.WARNING_CODE_MALFORMED_AUDIO for w in warnings)
    assert summary.chunks_malformed + summary.chunks_processed == seq
    # onsets of the good audio, on its own timeline after whatever garbage happened to decode
    results = [r.result for r in out if r.HasField("result") and r.result.seq >= first_good]
    start = results[0].stream_time_s - 0.02
    got = [o.time_s - start for r in results for o in r.onsets]
    assert len([t for t in got if t > 0.2]) == len(ONSETS)
    assert node.manager.active_count == 0


@pytest.mark.corpus
async def test_opus_64k_onset_f1_within_002_of_pcm_on_the_corpus(node: EdgeNode) -> None:
    root = corpus_public()
    f_pcm, f_opus = [], []
    for wav in sorted(root.glob("*.wav")):
        ref = np.asarray(json.loads(wav.with_suffix(".json").read_text())["onsets_s"])
        a = read_wav(wav)
        pcm = await _onsets(node, a)
        opus = await _onsets(node, encode_opus(a, bitrate_bps=64_000))
        f_pcm.append(mir_eval.onset.f_measure(ref, np.asarray(pcm), window=0.05)[0])
        f_opus.append(mir_eval.onset.f_measure(ref, np.asarray(opus), window=0.05)[0])
    mp, mo = float(np.mean(f_pcm)), float(np.mean(f_opus))
    print(f"onset F1 over gRPC: PCM {mp:.4f}, Opus 64 kbit/s {mo:.4f} ({len(f_pcm)} files)")
    assert abs(mp - mo) <= 0.02
