import mir_eval
import numpy as np
import pytest

from clients.scoring import onset_f_measure


@pytest.mark.parametrize("seed", range(20))
def test_matches_mir_eval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = np.sort(rng.uniform(0, 10, 40))
    kept = ref[rng.random(40) < 0.8]
    est = np.sort(np.concatenate([kept + rng.normal(0, 0.03, kept.size), rng.uniform(0, 10, 10)]))
    ours = onset_f_measure(ref.tolist(), est.tolist())
    theirs = mir_eval.onset.f_measure(ref, est, window=0.05)
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_empty_inputs() -> None:
    assert onset_f_measure([], [1.0]) == (0.0, 0.0, 0.0)
    assert onset_f_measure([1.0], []) == (0.0, 0.0, 0.0)
