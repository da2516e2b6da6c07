"""The chunk batcher: many sessions' chunks in shared batches, same results as one by one."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from edge_server.dsp.analyzer import AnalyzerConfig
from edge_server.pipeline.batcher import BatcherSettings, ChunkBatcher
from edge_server.pipeline.errors import StreamError
from edge_server.pipeline.events import ChunkOutcome
from edge_server.pipeline.session import Session, SessionLimits
from edge_server.pipeline.settings import AnalysisKind, Encoding, make_settings
from tests.signals import struck_string

ANALYSES = frozenset({AnalysisKind.ONSETS, AnalysisKind.FEATURES, AnalysisKind.NOTES})


def _session(sid: str) -> Session:
    settings = make_settings(
        sample_rate_hz=44100, encoding=Encoding.PCM16_LE, channels=1, analyses=ANALYSES,
        session_id=sid, client_name="",
    )  # fmt: skip
    return Session(settings=settings, analyzer_config=AnalyzerConfig(), limits=SessionLimits())


def _chunks(i: int) -> list[bytes]:
    x = struck_string(
        sample_rate_hz=44100, duration_s=1.0, notes=[(0.2 + 0.02 * i, 60 + i), (0.6, 55 + i)]
    )
    pcm = (x * 32767).astype("<i2").tobytes()
    return [pcm[j : j + 2048] for j in range(0, len(pcm), 2048)]


async def _feed(b: ChunkBatcher, s: Session, chunks: list[bytes]) -> list[ChunkOutcome]:
    out = []
    for seq, data in enumerate(chunks):
        pending = s.begin(seq=seq, data=data, capture_t_ns=seq)
        assert not isinstance(pending, ChunkOutcome)
        out.append(await b.run(s, pending))
    return out


def _key(o: ChunkOutcome) -> tuple[object, ...]:
    a = o.analysis
    assert a is not None
    return (
        a.seq,
        [round(x.time_s, 6) for x in a.onsets],
        [(n.midi_pitch, n.action) for n in a.notes],
    )


def _rms(o: ChunkOutcome) -> np.ndarray:
    assert o.analysis is not None
    f = o.analysis.features  # None for a chunk that completed no hop
    return np.zeros(0, dtype=np.float32) if f is None else f.rms_db


async def test_sessions_share_batches_and_get_their_own_results() -> None:
    n = 12
    batcher = ChunkBatcher(BatcherSettings(max_batch=8, budget_s=0.005))
    try:
        together = await asyncio.gather(
            *(_feed(batcher, _session(f"s{i}"), _chunks(i)) for i in range(n))
        )
    finally:
        batcher.shutdown()
    alone = []
    for i in range(n):
        s = _session(f"s{i}")
        alone.append([s.process_chunk(seq=k, data=c, capture_t_ns=k)
                      for k, c in enumerate(_chunks(i))])  # fmt: skip
    assert batcher.stats.mean_batch > 2  # chunks of several sessions ran together
    assert batcher.stats.chunks == sum(len(_chunks(i)) for i in range(n))
    for got, want in zip(together, alone, strict=True):
        assert [_key(o) for o in got] == [_key(o) for o in want]
        # features: equal up to the float rounding of products over more rows (a batch's
        # resampler and FFT calls), not to the bit
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(_rms(g), _rms(w), rtol=0, atol=1e-3)
    assert sum(len(o.analysis.onsets) for r in together for o in r if o.analysis) >= 2 * n


async def test_bad_chunk_fails_only_its_session() -> None:
    batcher = ChunkBatcher(BatcherSettings(budget_s=0.005))
    good, bad = _session("good"), _session("bad")
    try:
        p_good = good.begin(seq=0, data=_chunks(0)[0], capture_t_ns=0)
        p_bad = bad.begin(seq=0, data=b"\x00" * 1023, capture_t_ns=0)  # odd byte count
        assert not isinstance(p_good, ChunkOutcome) and not isinstance(p_bad, ChunkOutcome)
        r_good, r_bad = await asyncio.gather(
            batcher.run(good, p_good), batcher.run(bad, p_bad), return_exceptions=True
        )
    finally:
        batcher.shutdown()
    assert isinstance(r_good, ChunkOutcome) and r_good.analysis is not None
    assert isinstance(r_bad, StreamError) and "audio.data" in r_bad.message


async def test_lone_chunk_is_not_held_back() -> None:
    """At low load a chunk runs at once: no waiting for company that is not coming."""
    batcher = ChunkBatcher(BatcherSettings(budget_s=0.05))
    s = _session("one")
    try:
        loop = asyncio.get_running_loop()
        waits = []
        for seq, data in enumerate(_chunks(0)[:10]):
            await asyncio.sleep(0.02)  # 50 chunks/s: one due every 20 ms
            pending = s.begin(seq=seq, data=data, capture_t_ns=seq)
            assert not isinstance(pending, ChunkOutcome)
            t0 = loop.time()
            await batcher.run(s, pending)
            waits.append(loop.time() - t0)
    finally:
        batcher.shutdown()
    assert batcher.stats.mean_batch == pytest.approx(1.0)
    assert sorted(waits)[5] < 0.02  # median well under the 50 ms budget


async def test_overload_signal_follows_queue_wait() -> None:
    batcher = ChunkBatcher(BatcherSettings(overload_s=0.001))
    assert not batcher.overloaded()
    batcher.stats.wait_s = 0.002
    batcher._last_done = time.monotonic()
    assert batcher.overloaded()
    batcher._last_done -= 0.2  # no batch for 200 ms: the old figure has decayed to a quarter
    assert not batcher.overloaded()
    batcher.shutdown()
