import numpy as np
import pytest

from edge_server.dsp.analyzer import AnalyzerConfig
from edge_server.pipeline.errors import ErrorKind, StreamError
from edge_server.pipeline.events import WarningKind
from edge_server.pipeline.manager import ManagerLimits, SessionManager
from edge_server.pipeline.ports import NullMetrics
from edge_server.pipeline.session import Session, SessionLimits
from edge_server.pipeline.settings import DEFAULT_ANALYSES, Encoding, make_settings
from tests.signals import struck_string


def _settings(sid: str = "s1"):  # type: ignore[no-untyped-def]
    return make_settings(
        sample_rate_hz=44100,
        encoding=Encoding.PCM16_LE,
        channels=1,
        analyses=DEFAULT_ANALYSES,
        session_id=sid,
        client_name="",
    )


def _session() -> Session:
    return Session(settings=_settings(), analyzer_config=AnalyzerConfig(), limits=SessionLimits())


def _pcm(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def test_chunks_produce_onsets_and_features() -> None:
    s = _session()
    x = struck_string(sample_rate_hz=44100, duration_s=2.0, notes=[(0.5, 60), (1.0, 64), (1.5, 67)])
    onsets = []
    for seq, i in enumerate(range(0, len(x), 1024)):
        out = s.process_chunk(seq=seq, data=_pcm(x[i : i + 1024]), capture_t_ns=seq)
        assert out.analysis is not None and out.analysis.capture_t_ns == seq
        if len(x[i : i + 1024]) == 1024:  # the last, short chunk may complete no hop
            assert out.analysis.features is not None
        onsets += [o.time_s for o in out.analysis.onsets]
    np.testing.assert_allclose(onsets, [0.5, 1.0, 1.5], atol=0.012)
    log, truncated = s.onset_log()
    assert [o.time_s for o in log] == onsets and truncated == 0
    assert s.summary().chunks_processed == len(range(0, len(x), 1024))


def test_duplicate_seq_is_dropped_and_gap_is_counted() -> None:
    s = _session()
    chunk = _pcm(np.zeros(1024))
    assert s.process_chunk(seq=0, data=chunk, capture_t_ns=1).analysis is not None
    dup = s.process_chunk(seq=0, data=chunk, capture_t_ns=1)
    assert dup.analysis is None and dup.warnings[0].kind is WarningKind.DUPLICATE_SEQUENCE
    gap = s.process_chunk(seq=5, data=chunk, capture_t_ns=1)
    assert gap.analysis is not None and gap.warnings[0].kind is WarningKind.SEQUENCE_GAP
    summary = s.summary()
    assert (summary.chunks_processed, summary.chunks_dropped, summary.chunks_lost) == (2, 1, 4)


def test_manager_capacity_duplicates_and_retention() -> None:
    m = SessionManager(
        analyzer_config=AnalyzerConfig(),
        session_limits=SessionLimits(),
        limits=ManagerLimits(max_sessions=2, finished_retention=1),
        metrics=NullMetrics(),
    )
    a = m.open(_settings("a"))
    with pytest.raises(StreamError) as e:
        m.open(_settings("a"))
    assert e.value.kind is ErrorKind.ALREADY_EXISTS
    b = m.open(_settings("b"))
    with pytest.raises(StreamError) as e:
        m.open(_settings("c"))
    assert e.value.kind is ErrorKind.RESOURCE_EXHAUSTED and "max_sessions=2" in e.value.message
    m.close(a, reason="completed")
    m.close(b, reason="completed")
    assert m.active_count == 0
    assert m.get("b") is b and not b.active
    with pytest.raises(StreamError) as e:
        m.get("a")  # evicted: retention is 1
    assert e.value.kind is ErrorKind.NOT_FOUND
