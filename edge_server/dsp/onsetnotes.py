"""Which keys an onset struck: a small convolutional classifier run once per onset.

The fast tier anchors notes on onsets. When the onset detector fires at hop ``h``, the
classifier waits until hop ``h + DECISION_HOPS`` and reads pitch-grid spectra
(:mod:`.pitchgrid`): of the long (1024-sample) frames of hops ``h + r`` for ``r`` in
``REL_HOPS``, from before the attack (what was already sounding) to ~29 ms after it, and of
short frames (the last ``SHORT_SAMPLES`` of the frames of hops ``h + r``, ``r`` in
``SHORT_REL_HOPS``), which hold almost only the new notes. It returns, per piano key, the
probability that the key was struck at this onset.

Network (weights in ``models/onsetnotes.npz``, trained by ``training/train_onsetnotes.py``
on piano audio this project rendered itself)::

    X      (T, N_GRID)        T = len(REL_HOPS) + len(SHORT_REL_HOPS) grid spectra,
                              log10(1 + 1000 |X|), long frames first
    S      (T * H, N_GRID)    harmonic stacking: S[t, h, j] = X[t, j + shift(h)],
                              shift(h) = round(36 log2 h), h in HARMONICS (0 beyond the grid)
    Z1     (C1, N_GRID)       relu(conv1d(S, kernel 3 bins))
    Z2     (C2, 88)           relu(conv1d(Z1, kernel 3 bins)) at each key's fundamental bin
    Z3     (C3, 88)           relu(W3 [Z2[k + o] for o in CONTEXT_KEYS] + b3)   (keyboard context:
                              octave, fifth and twelfth neighbours, to tell a note from the
                              partials of a lower one)
    p      (88,)              sigmoid(w4 Z3 + b4)

Only the grid bins the key outputs depend on are computed (three per key for ``Z1``), as a
few matrix products over all onsets decided in the same block, for every stream at once.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .fft import hann_window, rfft_magnitudes
from .pitchgrid import BINS_PER_SEMITONE, GRID_MIDI_LO, N_GRID, harmonic_shifts

F32 = npt.NDArray[np.float32]

N_KEYS = 88
LOWEST_KEY_MIDI = 21
#: hops, relative to the firing hop, whose long-frame spectra the classifier reads
REL_HOPS = (-4, -2, -1, 0, 1, 2, 3, 4, 5)
#: the classifier runs at the end of hop ``firing hop + DECISION_HOPS`` (29.0 ms later; held-out
#: note F1 0.729 at 4 hops, 0.751 at 5, 0.768 at 6, whose notes arrive after ~50 ms: BENCHMARKS.md)
DECISION_HOPS = max(REL_HOPS)
#: hops whose short-frame spectra it reads (their frames lie inside the decision hop's frame)
SHORT_REL_HOPS = (2, 4, 5)
SHORT_SAMPLES = 512
N_ROWS = len(REL_HOPS) + len(SHORT_REL_HOPS)
#: multiples of a key's fundamental stacked as input channels
HARMONICS = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
#: neighbouring keys (semitones) each key's output reads
CONTEXT_KEYS = (-24, -19, -12, -7, -5, 0, 5, 7, 12, 19, 24)
MODEL_PATH = Path(__file__).parent / "models" / "onsetnotes.npz"


def export_weights(path: Path, state: dict[str, np.ndarray]) -> None:
    """Write a trained network's tensors (``training/train_onsetnotes.Net`` names) as .npz."""
    np.savez(
        path,
        w1=state["conv1.weight"], b1=state["conv1.bias"],
        w2=state["conv2.weight"], b2=state["conv2.bias"],
        w3=state["ctx.weight"][:, :, 0], b3=state["ctx.bias"],
        w4=state["out.weight"][0, :, 0], b4=state["out.bias"],
        rel_hops=np.asarray(REL_HOPS), short_rel_hops=np.asarray(SHORT_REL_HOPS),
        short_samples=np.asarray(SHORT_SAMPLES), harmonics=np.asarray(HARMONICS),
        context_keys=np.asarray(CONTEXT_KEYS),
    )  # fmt: skip


class OnsetNoteNet:
    """Numpy inference of the classifier (weights shared read-only by all streams).

    Parameters
    ----------
    path : Path
        An ``.npz`` written by :func:`export_weights`.
    """

    def __init__(self, path: Path = MODEL_PATH) -> None:
        with np.load(path) as z:
            if (
                tuple(z["rel_hops"]) != REL_HOPS
                or tuple(z["short_rel_hops"]) != SHORT_REL_HOPS
                or int(z["short_samples"]) != SHORT_SAMPLES
                or tuple(z["harmonics"]) != HARMONICS
                or tuple(z["context_keys"]) != CONTEXT_KEYS
            ):
                raise ValueError(f"{path}: trained for another input layout")
            w1, w2 = z["w1"].astype(np.float32), z["w2"].astype(np.float32)
            # conv1 (out, in, k): one (in, out) matrix per kernel tap, in = h * T + t
            self.w1 = tuple(np.ascontiguousarray(w1[:, :, k].T) for k in range(3))
            # conv2 at the key bins: im2col rows (k, c) -> (3 * c1, c2)
            self.w2 = np.ascontiguousarray(w2.transpose(2, 1, 0).reshape(-1, w2.shape[0]))
            c2 = w2.shape[0]
            w3 = z["w3"].astype(np.float32)  # (c3, n_ctx * c2), input index = o * c2 + c
            self.w3 = tuple(
                np.ascontiguousarray(w3[:, i * c2 : (i + 1) * c2].T)
                for i in range(len(CONTEXT_KEYS))
            )
            self.b1, self.b2, self.b3 = (z[k].astype(np.float32) for k in ("b1", "b2", "b3"))
            self.w4 = z["w4"].astype(np.float32)
            self.b4 = float(z["b4"][0])
        for a in (*self.w1, self.w2, *self.w3, self.b1, self.b2, self.b3, self.w4):
            a.flags.writeable = False
        self._shifts = harmonic_shifts(HARMONICS)
        # Z1 is needed at the bins key_bin - 1 .. key_bin + 1 of all keys: the contiguous run
        # [first, first + n_z1); S at one more bin each side; X at S's bins + each shift
        self._z1_first = (LOWEST_KEY_MIDI - GRID_MIDI_LO) * BINS_PER_SEMITONE - 1
        self._n_z1 = N_KEYS * BINS_PER_SEMITONE
        self._pad_lo = max(0, -(self._z1_first - 1 + min(self._shifts)))
        self._pad_hi = max(0, self._z1_first + self._n_z1 + 1 + max(self._shifts) - N_GRID)
        self._ctx_pad = max(abs(o) for o in CONTEXT_KEYS)

    def predict(self, x: F32) -> F32:
        """Key probabilities of onsets.

        Parameters
        ----------
        x : ndarray, shape (n_onsets, N_ROWS, N_GRID), float32
            Each onset's pitch-grid spectra: long frames at ``REL_HOPS``, then short frames
            at ``SHORT_REL_HOPS`` (``>= 0``).

        Returns
        -------
        ndarray, shape (n_onsets, 88), float32
            Probability that each key (MIDI 21..108) was struck at the onset, ``[0, 1]``.
        """
        n = int(x.shape[0])
        if n == 0:
            return np.zeros((0, N_KEYS), dtype=np.float32)
        # (n, bins, t), zero-padded so that every shifted run stays inside
        xt = np.zeros((n, self._pad_lo + N_GRID + self._pad_hi, x.shape[1]), dtype=np.float32)
        xt[:, self._pad_lo : self._pad_lo + N_GRID] = x.transpose(0, 2, 1)
        # harmonic stack S over the bins Z1 needs (+1 each side): (n, n_z1 + 2, H * t)
        q0 = self._pad_lo + self._z1_first - 1
        m = self._n_z1 + 2
        st = np.stack([xt[:, q0 + sh : q0 + sh + m] for sh in self._shifts], axis=2)
        st = st.reshape(n, m, -1)
        z1 = st[:, 0 : m - 2] @ self.w1[0]
        z1 += st[:, 1 : m - 1] @ self.w1[1]
        z1 += st[:, 2:m] @ self.w1[2]
        z1 += self.b1
        np.maximum(z1, 0.0, out=z1)
        z2 = z1.reshape(n * N_KEYS, -1) @ self.w2  # the three Z1 bins of each key, in order
        z2 += self.b2
        np.maximum(z2, 0.0, out=z2)
        p = self._ctx_pad
        zp = np.zeros((n, N_KEYS + 2 * p, z2.shape[1]), dtype=np.float32)
        zp[:, p : p + N_KEYS] = z2.reshape(n, N_KEYS, -1)
        z3 = np.zeros((n, N_KEYS, self.b3.shape[0]), dtype=np.float32)
        for o, w in zip(CONTEXT_KEYS, self.w3, strict=True):
            z3 += zp[:, p + o : p + o + N_KEYS] @ w
        z3 += self.b3
        np.maximum(z3, 0.0, out=z3)
        logit = z3 @ self.w4 + self.b4
        return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float32).reshape(n, N_KEYS)


def short_magnitudes(tails: F32) -> F32:
    """Magnitudes of Hann-windowed short frames.

    Parameters
    ----------
    tails : ndarray, shape (n, SHORT_SAMPLES), float32
        Time-domain short frames (the last ``SHORT_SAMPLES`` of long frames; audio in
        ``[-1, 1]``).

    Returns
    -------
    ndarray, shape (n, SHORT_SAMPLES // 2 + 1), float32
        Linear magnitudes, ``>= 0`` (a new array).
    """
    m = rfft_magnitudes(tails, hann_window(SHORT_SAMPLES), max_frames=_MAX_SHORT)
    return m if m.flags.owndata else m.copy()


_MAX_SHORT = 64


@lru_cache(maxsize=2)
def load_onset_note_net(path: Path = MODEL_PATH) -> OnsetNoteNet:
    """The shipped classifier, loaded once per process."""
    return OnsetNoteNet(path)
