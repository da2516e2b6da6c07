"""Batched analysis of many streams equals each stream analysed alone."""

from __future__ import annotations

import numpy as np

from edge_server.dsp.analyzer import AnalyzerConfig, StreamAnalyzer, analyze_many
from tests.signals import struck_string


def _stream(i: int, rate_hz: int) -> np.ndarray:
    x = struck_string(
        sample_rate_hz=rate_hz,
        duration_s=1.5,
        notes=[(0.1 + 0.03 * i, 48 + 5 * i), (0.5, 60 + 3 * i), (0.9 + 0.01 * i, 67 + i)],
        seed=i,
    )
    noise = 1e-3 * np.random.default_rng(i).standard_normal(x.shape)
    return (x + noise).astype(np.float32)


def _run(batched: bool, rates: list[int], chunks: list[int], notes: bool) -> list[list]:
    cfg = AnalyzerConfig()
    xs = [_stream(i, r) for i, r in enumerate(rates)]
    ans = [StreamAnalyzer(input_rate_hz=r, config=cfg, notes=notes) for r in rates]
    blocks: list[list] = [[] for _ in rates]
    pos = [0] * len(rates)
    while any(p < x.size for p, x in zip(pos, xs, strict=True)):
        live = [i for i, x in enumerate(xs) if pos[i] < x.size]
        parts = [xs[i][pos[i] : pos[i] + chunks[i]] for i in live]
        if batched:
            got = analyze_many([ans[i] for i in live], parts)
        else:
            got = [ans[i].process(p) for i, p in zip(live, parts, strict=True)]
        for i, b in zip(live, got, strict=True):
            blocks[i].append(b)
            pos[i] += chunks[i]
    return blocks


def test_batch_equals_streams_alone() -> None:
    # mixed rates (grouped and one-by-one resampling), chunk sizes (hop counts differ, one
    # chunk larger than max_block_samples) and both note settings
    rates = [44_100, 44_100, 44_100, 48_000, 22_050, 44_100]
    chunks = [1024, 1024, 1000, 960, 512, 12_000]
    for notes in (True, False):
        alone = _run(False, rates, chunks, notes)
        together = _run(True, rates, chunks, notes)
        for a_blocks, b_blocks in zip(alone, together, strict=True):
            for a, b in zip(a_blocks, b_blocks, strict=True):
                np.testing.assert_allclose(a.flux, b.flux, rtol=1e-4, atol=1e-4)
                np.testing.assert_allclose(a.rms_db, b.rms_db, rtol=1e-5, atol=1e-4)
                np.testing.assert_allclose(a.centroid_hz, b.centroid_hz, rtol=1e-4, atol=1e-2)
                np.testing.assert_allclose(a.onset_times_s, b.onset_times_s)
                assert [(n.midi_pitch, n.note_id) for n in a.note_ons] == [
                    (n.midi_pitch, n.note_id) for n in b.note_ons
                ]
        assert sum(b.onset_times_s.size for s in together for b in s) >= 3 * len(rates)
