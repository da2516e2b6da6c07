"""The onset key classifier's numpy inference against a direct reading of its equations."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_server.dsp.onsetnotes import (
    CONTEXT_KEYS,
    HARMONICS,
    LOWEST_KEY_MIDI,
    N_KEYS,
    N_ROWS,
    OnsetNoteNet,
    export_weights,
    load_onset_note_net,
)
from edge_server.dsp.pitchgrid import N_GRID, harmonic_shifts, key_bin


def _random_state(c1: int, c2: int, c3: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    t, h = N_ROWS, len(HARMONICS)

    def r(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.3, shape).astype(np.float32)

    return {
        "conv1.weight": r(c1, t * h, 3), "conv1.bias": r(c1),
        "conv2.weight": r(c2, c1, 3), "conv2.bias": r(c2),
        "ctx.weight": r(c3, c2 * len(CONTEXT_KEYS), 1), "ctx.bias": r(c3),
        "out.weight": r(1, c3, 1), "out.bias": r(1),
    }  # fmt: skip


def _reference(x: np.ndarray, s: dict[str, np.ndarray]) -> np.ndarray:
    """Loops over the module docstring's equations (one onset)."""
    shifts = harmonic_shifts(HARMONICS)
    t = N_ROWS
    stack = np.zeros((len(shifts) * t, N_GRID))
    for hi, sh in enumerate(shifts):
        for ti in range(t):
            for j in range(N_GRID):
                if 0 <= j + sh < N_GRID:
                    stack[hi * t + ti, j] = x[ti, j + sh]

    def conv(inp: np.ndarray, w: np.ndarray, b: np.ndarray, j: int) -> np.ndarray:
        acc = b.astype(np.float64).copy()
        for k in range(3):
            if 0 <= j + k - 1 < inp.shape[1]:
                acc += w[:, :, k] @ inp[:, j + k - 1]
        return np.maximum(acc, 0)

    z1 = np.stack([conv(stack, s["conv1.weight"], s["conv1.bias"], j) for j in range(N_GRID)], 1)
    kb = [key_bin(LOWEST_KEY_MIDI + k) for k in range(N_KEYS)]
    z2 = np.stack([conv(z1, s["conv2.weight"], s["conv2.bias"], j) for j in kb], 1)
    out = np.zeros(N_KEYS)
    for k in range(N_KEYS):
        ctx = np.concatenate(
            [z2[:, k + o] if 0 <= k + o < N_KEYS else np.zeros(z2.shape[0]) for o in CONTEXT_KEYS]
        )
        z3 = np.maximum(s["ctx.weight"][:, :, 0] @ ctx + s["ctx.bias"], 0)
        out[k] = 1 / (1 + np.exp(-(s["out.weight"][0, :, 0] @ z3 + s["out.bias"][0])))
    return out


def test_numpy_inference_matches_the_equations(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    state = _random_state(6, 5, 4, rng)
    export_weights(tmp_path / "w.npz", state)
    net = OnsetNoteNet(tmp_path / "w.npz")
    x = rng.uniform(0, 3, (2, N_ROWS, N_GRID)).astype(np.float32)
    got = net.predict(x)
    assert got.shape == (2, N_KEYS)
    for i in range(2):
        np.testing.assert_allclose(got[i], _reference(x[i], state), atol=2e-5)


def test_no_onsets_and_shipped_model() -> None:
    net = load_onset_note_net()
    assert net.predict(np.zeros((0, N_ROWS, N_GRID), np.float32)).shape == (0, N_KEYS)
    p = net.predict(np.zeros((1, N_ROWS, N_GRID), np.float32))
    assert p.shape == (1, N_KEYS) and np.all((p >= 0) & (p <= 1))
    assert p.max() < 0.5  # silence strikes no key
