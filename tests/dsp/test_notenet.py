"""The onset network's streaming inference, with and without the GRU, on synthetic weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_server.dsp.notenet import MODEL_PATH, NoteNet, NoteNetWeights, process_many

N_GRU = 8


def _weights(tmp_path: Path, *, n_gru: int) -> NoteNetWeights:
    """The shipped front end and layers with random weights; with ``n_gru`` a GRU whose
    state takes ``n_gru`` more rows of layer B."""
    rng = np.random.default_rng(7)
    with np.load(MODEL_PATH) as z:
        arrays = {k: z[k] for k in z.files}
    h1 = arrays["a"].shape[0]
    for k in ("G_ih", "G_hh", "g_ih", "g_hh"):
        arrays.pop(k, None)
    n_b = h1 * len(arrays["taps"]) + n_gru
    arrays["B"] = rng.normal(0, 0.1, (n_b, arrays["B"].shape[1])).astype(np.float32)
    if n_gru:
        arrays["G_ih"] = rng.normal(0, 0.3, (h1, 3 * n_gru)).astype(np.float32)
        arrays["G_hh"] = rng.normal(0, 0.1, (n_gru, 3 * n_gru)).astype(np.float32)
        arrays["g_ih"] = rng.normal(0, 0.1, 3 * n_gru).astype(np.float32)
        arrays["g_hh"] = rng.normal(0, 0.1, 3 * n_gru).astype(np.float32)
    path = tmp_path / f"net{n_gru}.npz"
    np.savez(path, **arrays)
    return NoteNetWeights(path)


def _inputs(w: NoteNetWeights, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.abs(rng.normal(1.0, 1.0, (n, w.spec.n_inputs))).astype(np.float32)


@pytest.mark.parametrize("n_gru", [0, N_GRU])
def test_chunking_batching_and_restore_do_not_change_the_output(tmp_path: Path, n_gru: int) -> None:
    w = _weights(tmp_path, n_gru=n_gru)
    x = _inputs(w, 60, seed=1)
    whole = NoteNet(weights=w).process(x).onset
    net = NoteNet(weights=w)
    parts, i = [], 0
    for size in (1, 7, 3, 20, 2, 27):
        parts.append(net.process(x[i : i + size]).onset)
        i += size
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)

    a, b = NoteNet(weights=w), NoteNet(weights=w)
    a.process(x[:25])
    b.restore(a.state())
    np.testing.assert_allclose(b.process(x[25:]).onset, whole[25:], atol=1e-5)

    xs = np.stack([x[:30], _inputs(w, 30, seed=2), _inputs(w, 30, seed=3)])
    nets = [NoteNet(weights=w) for _ in range(3)]
    batched = process_many(nets, xs).onset
    for k in range(3):
        alone = NoteNet(weights=w).process(xs[k]).onset
        np.testing.assert_allclose(batched[k], alone, atol=1e-5)


def _gru_reference(w: NoteNetWeights, h1: np.ndarray, g0: np.ndarray) -> np.ndarray:
    """PyTorch's GRU equations, one step at a time in float64."""

    def sig(v: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-v))

    n = w.n_gru
    g = g0.astype(np.float64)
    out = []
    for x in h1.astype(np.float64):
        gi = x @ w.g_ih + w.g_ih_bias
        gh = g @ w.g_hh + w.g_hh_bias
        r = sig(gi[:n] + gh[:n])
        z = sig(gi[n : 2 * n] + gh[n : 2 * n])
        cand = np.tanh(gi[2 * n :] + r * gh[2 * n :])
        g = (1 - z) * cand + z * g
        out.append(g)
    return np.asarray(out)


def test_gru_follows_the_pytorch_equations(tmp_path: Path) -> None:
    from edge_server.dsp.notenet import _gru_many

    w = _weights(tmp_path, n_gru=N_GRU)
    net = NoteNet(weights=w)
    g0 = net.state()["gru"]
    h1 = np.abs(np.random.default_rng(4).normal(0, 1, (1, 12, w.n_h1))).astype(np.float32)
    got = _gru_many([net], h1)[0]
    np.testing.assert_allclose(got, _gru_reference(w, h1[0], g0), atol=1e-5)
    np.testing.assert_allclose(net.state()["gru"], got[-1])


def test_a_stream_starts_as_after_a_long_silence(tmp_path: Path) -> None:
    from edge_server.dsp.notenet import _GRU_WARM_HOPS

    w = _weights(tmp_path, n_gru=N_GRU)
    net = NoteNet(weights=w)
    zero = {k: np.zeros_like(v) for k, v in net.state().items()}
    fresh = NoteNet(weights=w)
    fresh.restore(zero)
    hops = max(w.taps) + 2 + _GRU_WARM_HOPS
    fresh.process(np.zeros((hops, w.spec.n_inputs), dtype=np.float32))
    for k, v in net.state().items():
        np.testing.assert_allclose(v, fresh.state()[k], rtol=1e-5, atol=1e-5)


def test_weights_whose_layer_b_does_not_fit_are_refused(tmp_path: Path) -> None:
    with np.load(MODEL_PATH) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["B"] = arrays["B"][:-1]
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="layer B"):
        NoteNetWeights(path)


def test_a_state_without_the_gru_part_is_refused(tmp_path: Path) -> None:
    state = NoteNet(weights=_weights(tmp_path, n_gru=0)).state()
    with pytest.raises(KeyError):
        NoteNet(weights=_weights(tmp_path, n_gru=N_GRU)).restore(state)
