"""Flow-control advice: coarsen while overloaded, back to normal once calm."""

from __future__ import annotations

import time

import pytest

from edge_server.dsp.analyzer import AnalyzerConfig
from edge_server.pipeline.flow import FlowAdvisor
from edge_server.pipeline.session import Session, SessionLimits
from edge_server.pipeline.settings import DEFAULT_ANALYSES, Encoding, make_settings


class Load:
    def __init__(self) -> None:
        self.over = False
        self.wait_s = 0.004

    def overloaded(self) -> bool:
        return self.over


def _session(encoding: Encoding = Encoding.PCM16_LE) -> Session:
    rate_hz = 48000 if encoding is Encoding.OPUS else 44100
    settings = make_settings(
        sample_rate_hz=rate_hz, encoding=encoding, channels=1, analyses=DEFAULT_ANALYSES,
        session_id="s", client_name="",
    )  # fmt: skip
    return Session(settings=settings, analyzer_config=AnalyzerConfig(), limits=SessionLimits())


def test_coarsen_then_escalate_then_calm(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    load = Load()
    adv = FlowAdvisor(batcher=load, credit_chunks=4, calm_s=2.0)
    s = _session()
    assert adv.update(s, 2048) is None  # calm: nothing to say
    load.over = True
    a = adv.update(s, 2048)  # 1024 frames of PCM16 mono
    assert a is not None and a.coarsen and a.suggested_chunk_frames == 2048
    assert a.credit_chunks == 4 and a.queue_delay_s == pytest.approx(0.004)
    assert adv.update(s, 4096) is None  # told already; wait calm_s before asking for more
    now[0] += 2.5
    a = adv.update(s, 4096)
    assert a is not None and a.suggested_chunk_frames == 4096
    for _ in range(6):  # capped at the session's largest chunk (0.5 s = 22050 frames)
        now[0] += 2.5
        a = adv.update(s, 4096) or a
    assert a.suggested_chunk_frames == s.max_chunk_samples
    load.over = False
    now[0] += 1.0
    assert adv.update(s, 4096) is None  # not calm for long enough yet
    now[0] += 2.0
    a = adv.update(s, 4096)
    assert a is not None and not a.coarsen and a.suggested_chunk_frames == 0
    assert adv.update(s, 4096) is None


def test_opus_streams_are_told_without_a_chunk_size() -> None:
    load = Load()
    load.over = True
    adv = FlowAdvisor(batcher=load, credit_chunks=4)
    a = adv.update(_session(Encoding.OPUS), 120)
    assert a is not None and a.coarsen and a.suggested_chunk_frames == 0
