"""Snapshot bytes and stored result records round-trip exactly; bad bytes are refused."""

from __future__ import annotations

import numpy as np
import pytest

from edge_server.dsp.analyzer import AnalyzerConfig
from edge_server.pipeline.events import ChunkAnalysis, Features, Onset
from edge_server.pipeline.records import (
    chunk_records,
    decode_result,
    encode_result,
    record_checksum,
    summary_record,
)
from edge_server.pipeline.session import Session, SessionLimits
from edge_server.pipeline.settings import (
    DEFAULT_ANALYSES,
    AnalysisKind,
    Encoding,
    make_settings,
)
from edge_server.pipeline.snapshot import SnapshotError, decode_snapshot, encode_snapshot
from tests.signals import piano_like


def _session(analyses: frozenset[AnalysisKind] = DEFAULT_ANALYSES) -> Session:
    s = make_settings(
        sample_rate_hz=44_100, encoding=Encoding.FLOAT32_LE, channels=1,
        analyses=analyses, session_id="s1", client_name="t",
    )  # fmt: skip
    return Session(settings=s, analyzer_config=AnalyzerConfig(), limits=SessionLimits())


@pytest.mark.parametrize(
    ("analyses", "max_bytes"),
    [
        # ~12.4 kB: resampler and frame histories, the onset detector's bands and rings
        (DEFAULT_ANALYSES, 13_000),
        # ~34 kB: the same plus the fast tier's 10-hop spectrum ring (20.5 kB)
        (DEFAULT_ANALYSES | {AnalysisKind.NOTES}, 35_000),
    ],
    ids=["onsets+features", "with-notes"],
)
def test_session_snapshot_restores_counters_and_continues_identically(
    analyses: frozenset[AnalysisKind], max_bytes: int
) -> None:
    x = piano_like(sample_rate_hz=44_100, duration_s=2.0, onsets_s=[0.2, 0.9, 1.5])
    chunks = [x[i : i + 1024].tobytes() for i in range(0, x.size, 1024)]
    a, b = _session(analyses), _session(analyses)
    for seq, c in enumerate(chunks[:40]):
        a.process_chunk(seq=seq, data=c, capture_t_ns=0)
        b.process_chunk(seq=seq, data=c, capture_t_ns=0)
    blob = b.snapshot()
    assert len(blob) < max_bytes
    c2 = _session(analyses)
    c2.restore(blob)
    assert (c2.next_seq, c2.chunks_processed, c2.onsets_total) == (40, 40, b.onsets_total)
    for seq, c in enumerate(chunks[40:], 40):
        ra = a.process_chunk(seq=seq, data=c, capture_t_ns=0).analysis
        rc = c2.process_chunk(seq=seq, data=c, capture_t_ns=0).analysis
        assert ra is not None and rc is not None
        assert encode_result(ra) == encode_result(rc)


def test_snapshot_codec_round_trip_and_garbage() -> None:
    arrays = {"a": np.arange(5, dtype=np.float32), "b": np.array([[1, 2]], dtype=np.int64)}
    got, meta = decode_snapshot(encode_snapshot(arrays=arrays, meta={"k": 1}))
    assert meta == {"k": 1}
    np.testing.assert_array_equal(got["a"], arrays["a"])
    assert got["b"].shape == (1, 2)
    for bad in (b"", b"\x00\x00\x00\x05hello", b"\x00\x00\x00\x02{}"):
        with pytest.raises(SnapshotError):
            decode_snapshot(bad)
    with pytest.raises(SnapshotError, match="dtype"):
        encode_snapshot(arrays={"o": np.array(["x"])}, meta={})


def test_result_records_round_trip_exactly() -> None:
    f = Features(
        first_time_s=-0.0174,
        hop_s=128 / 22050,
        rms_db=np.array([-20.123456, -30.5], np.float32),
        centroid_hz=np.array([1000.1, 2000.2], np.float32),
        flux=np.array([0.1, 3.3], np.float32),
    )
    a = ChunkAnalysis(7, 123, (Onset(1.0 / 3, 0.25, 0.35),), f, 0.1857)
    back = decode_result(encode_result(a))
    assert encode_result(back) == encode_result(a)
    assert back.onsets == a.onsets and back.features is not None
    np.testing.assert_array_equal(back.features.rms_db, f.rms_db)
    kinds = [(r.kind, r.priority) for r in chunk_records(a)]
    assert kinds == [("events", 1), ("features", 2)]
    assert [r.kind for r in chunk_records(ChunkAnalysis(8, 0, (), None, 0.2))] == ["events"]
    w = ChunkAnalysis(9, 0, (), None, 0.3, retracted_onsets=(1.0 / 3, 0.1))
    assert decode_result(encode_result(w)).retracted_onsets == (1.0 / 3, 0.1)
    assert record_checksum("s", 1, "events", b"x") != record_checksum("s", 2, "events", b"x")
    _ = summary_record  # covered by the store tests
