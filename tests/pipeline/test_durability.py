"""Durability: a chunk's store encoding prepared on the batch worker is what the event loop
would have written itself, and the worker, not the event loop, prepares it."""

from __future__ import annotations

import threading

from edge_server.dsp.analyzer import AnalyzerConfig
from edge_server.metrics import PrometheusMetrics
from edge_server.pipeline.batcher import BatcherSettings, ChunkBatcher
from edge_server.pipeline.events import ChunkAnalysis, ChunkOutcome
from edge_server.pipeline.manager import ManagerLimits, SessionManager
from edge_server.pipeline.records import StoredChunk
from edge_server.pipeline.session import Session, SessionLimits
from edge_server.pipeline.settings import AnalysisKind, Encoding, StreamSettings, make_settings
from edge_server.store.memory import MemoryStore
from tests.pipeline.test_batcher import _chunks

ANALYSES = frozenset({AnalysisKind.ONSETS, AnalysisKind.FEATURES, AnalysisKind.NOTES})
EVERY = 4


def _manager(store: MemoryStore) -> SessionManager:
    return SessionManager(
        analyzer_config=AnalyzerConfig(),
        session_limits=SessionLimits(),
        limits=ManagerLimits(snapshot_every_chunks=EVERY),
        metrics=PrometheusMetrics(),
        store=store,
    )


def _settings(sid: str) -> StreamSettings:
    return make_settings(
        sample_rate_hz=44100, encoding=Encoding.PCM16_LE, channels=1, analyses=ANALYSES,
        session_id=sid, client_name="",
    )  # fmt: skip


async def _stream(*, on_worker: bool, resumable: bool = True) -> tuple[MemoryStore, list[int], int]:
    """Stream one piece through a manager with a memory store (outbox on), its commits
    prepared on the batch worker or at commit; the store, the checkpoints reported and the
    durable records expected (events per chunk, features per chunk that completed a hop)."""
    store = MemoryStore(ttl_s=60.0, log_keep=1000, outbox_enabled=True)
    mgr = _manager(store)
    seen: list[str] = []

    def prepare(s: Session, a: ChunkAnalysis) -> StoredChunk | None:
        seen.append(threading.current_thread().name)
        return mgr.durability.prepare(s, a)

    batcher = ChunkBatcher(BatcherSettings(), prepare=prepare if on_worker else None)
    checkpoints = []
    records = 0
    try:
        s = await mgr.durability.start(_settings("p"), resumable=resumable)
        for seq, data in enumerate(_chunks(0)):
            pending = s.begin(seq=seq, data=data, capture_t_ns=seq)
            assert not isinstance(pending, ChunkOutcome)
            out = await batcher.run(s, pending)
            assert out.analysis is not None
            assert (out.stored is not None) is on_worker
            records += 1 + (out.analysis.features is not None)
            cp = await mgr.durability.commit(s, out.analysis, stored=out.stored)
            checkpoints.append(-1 if cp is None else cp)
    finally:
        batcher.shutdown()
    if on_worker:  # every chunk was encoded on the batch worker's thread
        assert seen and all(name.startswith("edge-batch") for name in seen)
    return store, checkpoints, records


async def test_prepared_commits_store_what_commits_encode_themselves() -> None:
    worker, cp_worker, records = await _stream(on_worker=True)
    loop, cp_loop, _ = await _stream(on_worker=False)
    n = len(_chunks(0))
    assert cp_worker == cp_loop
    # a snapshot once EVERY chunks passed since the last (none yet: -1): seq 3, 7, 11, ...
    assert cp_worker[:9] == [-1, -1, -1, 3, 3, 3, 3, 7, 7]
    assert await worker.results("p", after_seq=-1, upto_seq=n) == await loop.results(
        "p", after_seq=-1, upto_seq=n
    )
    assert len(await worker.results("p", after_seq=-1, upto_seq=n)) == n
    a = await worker.take_over("p", node_id="x")
    b = await loop.take_over("p", node_id="x")
    assert a is not None and b is not None
    assert a.snapshot_seq == b.snapshot_seq == max(cp_worker) > n - 1 - EVERY
    assert a.snapshot == b.snapshot
    # the durable records (events + features per chunk): same count, same bytes
    assert worker.appended_records == loop.appended_records == records > n
    assert worker.checksum == loop.checksum


async def test_a_stream_without_resume_prepares_records_only() -> None:
    store, cps, records = await _stream(on_worker=True, resumable=False)
    n = len(_chunks(0))
    assert set(cps) == {-1}  # no snapshot, no checkpoint
    assert store.appended_records == records > n  # the records are still forwarded
    assert await store.results("p", after_seq=-1, upto_seq=n) == []
