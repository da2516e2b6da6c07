import numpy as np
import pytest

from edge_server.dsp.analyzer import AnalyzerConfig, StreamAnalyzer
from tests.signals import clicks, piano_like, struck_string, tone

TRUE_ONSETS = [0.5, 0.9, 1.25, 1.6, 2.2, 2.45, 3.0]
PITCHES = [60, 64, 64, 67, 72, 55, 55]  # includes repeated notes
SUPERFLUX = AnalyzerConfig(onset_method="superflux")


def _onsets(
    x: np.ndarray, rate: int, chunk: int = 1024, config: AnalyzerConfig | None = None
) -> np.ndarray:
    an = StreamAnalyzer(input_rate_hz=rate, config=config or AnalyzerConfig())
    out = [an.process(x[i : i + chunk]).onset_times_s for i in range(0, len(x), chunk)]
    return np.concatenate(out)


@pytest.mark.parametrize("rate", [16000, 22050, 44100, 48000])
def test_struck_strings_are_found_at_known_times(rate: int) -> None:
    x = struck_string(
        sample_rate_hz=rate, duration_s=3.5, notes=list(zip(TRUE_ONSETS, PITCHES, strict=True))
    )
    got = _onsets(x, rate)
    assert len(got) == len(TRUE_ONSETS)
    np.testing.assert_allclose(got, TRUE_ONSETS, atol=0.012)


@pytest.mark.parametrize("rate", [16000, 22050, 44100, 48000])
def test_superflux_finds_clicks_at_known_times(rate: int) -> None:
    x = clicks(sample_rate_hz=rate, duration_s=3.5, onsets_s=TRUE_ONSETS)
    got = _onsets(x, rate, config=SUPERFLUX)
    assert len(got) == len(TRUE_ONSETS)
    np.testing.assert_allclose(got, TRUE_ONSETS, atol=0.012)


@pytest.mark.parametrize("config", [AnalyzerConfig(), SUPERFLUX], ids=["net", "superflux"])
def test_piano_like_tones_including_a_repeated_note(config: AnalyzerConfig) -> None:
    pitches = [261.6, 329.6, 329.6, 392.0, 523.3, 196.0, 196.0]
    x = piano_like(sample_rate_hz=44100, duration_s=3.5, onsets_s=TRUE_ONSETS, f0_hz=pitches)
    got = _onsets(x, 44100, config=config)
    assert len(got) == len(TRUE_ONSETS)
    np.testing.assert_allclose(got, TRUE_ONSETS, atol=0.015)


def test_steady_tone_and_silence_give_no_onsets() -> None:
    x = np.concatenate(
        [np.zeros(22050, dtype=np.float32), tone(sample_rate_hz=44100, duration_s=2, freq_hz=440)]
    )
    x[:100] = 0
    got = _onsets(x, 44100)
    # the tone's start at 0.5 s is the only onset
    assert len(got) == 1 and abs(got[0] - 0.5) < 0.015


def test_detection_is_causal_and_chunking_invariant() -> None:
    x = piano_like(sample_rate_hz=44100, duration_s=3.5, onsets_s=TRUE_ONSETS)
    full = _onsets(x, 44100, chunk=1024)
    np.testing.assert_array_equal(_onsets(x, 44100, chunk=441), full)
    # what is reported before 2.0 s does not change when later audio is replaced
    y = x.copy()
    y[int(2.0 * 44100) :] = 0.0
    early = _onsets(y, 44100)
    np.testing.assert_array_equal(early[early < 1.9], full[full < 1.9])


def test_features_have_one_value_per_hop() -> None:
    cfg = AnalyzerConfig()
    an = StreamAnalyzer(input_rate_hz=22050, config=cfg)
    x = tone(sample_rate_hz=22050, duration_s=1.0, freq_hz=1000.0, amp=1.0)
    block = an.process(x)
    assert block.n_frames == len(x) // cfg.hop_samples
    assert block.rms_db.shape == block.centroid_hz.shape == block.flux.shape
    assert block.rms_db[-1] == pytest.approx(-3.01, abs=0.1)
    assert block.centroid_hz[-1] == pytest.approx(1000.0, abs=40.0)
    assert block.first_frame_time_s == pytest.approx(
        (cfg.hop_samples - cfg.frame_samples / 2) / 22050
    )


def test_withdrawn_onsets_are_left_out_of_the_block_that_found_them() -> None:
    """Withdrawing every onset whose strongest key is under 1 (some saturate at 1.0): streamed
    in 1024-sample chunks the withdrawn onsets come back as retractions of later blocks; in
    one block they are never reported. The onsets kept are the same either way."""
    from dataclasses import replace

    notes = [(0.5, 60), (0.5, 64), (1.2, 72), (1.9, 55), (2.6, 55)]
    x = struck_string(sample_rate_hz=44100, duration_s=3.2, notes=notes)
    c = AnalyzerConfig()
    c = replace(c, notes=replace(c.notes, onset_confirm_threshold=1.0))
    a = StreamAnalyzer(input_rate_hz=44100, config=c, notes=True)
    reported, withdrawn = [], []
    for i in range(0, x.size, 1024):
        b = a.process(x[i : i + 1024])
        reported += b.onset_times_s.tolist()
        withdrawn += [r.onset_s for r in b.onset_retractions]
    assert len(reported) == 4 and 1 <= len(withdrawn) < 4 and set(withdrawn) <= set(reported)
    assert all(0.0 <= r.key_prob < 1.0 for r in b.onset_retractions)
    whole = StreamAnalyzer(input_rate_hz=44100, config=c, notes=True).process(x)
    assert not whole.onset_retractions
    assert whole.onset_times_s.tolist() == [t for t in reported if t not in withdrawn]
