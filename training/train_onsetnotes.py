"""Train the fast tier's note classifier (which keys an onset struck) on rendered clips.

    PYTHONPATH=. python -m training.train_onsetnotes --data DIR/clips --feats DIR/nfeats \
        --out edge_server/dsp/models/onsetnotes.npz [--epochs 12]

Needs PyTorch (CPU); the server runs the exported weights with numpy
(:mod:`edge_server.dsp.onsetnotes`, whose docstring describes the network).

Examples are anchored where the server anchors them: on the hops where a stream of the clip
fires an onset (``training.notefeats``), plus the true onsets the stream missed, placed at
a typical detection delay (so the classifier also learns the hard cases). An anchor's input
is the pitch-grid spectrum of hops ``anchor + r`` for ``r`` in ``REL_HOPS``; its target is
the set of keys whose true note-on is nearest to this anchor among all anchors and within
50 ms of its reported onset time. Clips whose number ends in 0 are held out (validation and
the thresholds); ``--holdout-piano`` also holds out every clip of one piano.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge_server.dsp.netonsets import DecisionParams
from edge_server.dsp.onsetnotes import (
    CONTEXT_KEYS,
    HARMONICS,
    N_ROWS,
    REL_HOPS,
    SHORT_REL_HOPS,
    export_weights,
)
from edge_server.dsp.pitchgrid import BINS_PER_SEMITONE, GRID_MIDI_LO, N_GRID, harmonic_shifts

N_KEYS = 88
LOWEST = 21
ONSET_OFFSET_S = DecisionParams().onset_offset_s  # reported onset = firing hop end - this
MATCH_S = 0.05
HOP_S = 128 / 22_050


def anchors_and_labels(
    notes: list[list[float]], onset_hops: np.ndarray, ends: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(anchor hops, 0/1 labels (n, 88), whether each anchor is a real stream onset)."""
    n_hops = ends.shape[0]
    det = [int(h) for h in onset_hops if 4 <= h < n_hops - 8]
    t_det = np.asarray([ends[h] - ONSET_OFFSET_S for h in det])
    on = np.asarray([n[0] for n in notes])
    keys = np.asarray([int(n[2]) - LOWEST for n in notes])
    # true onsets no stream anchor is near: synthetic anchors at a typical detection delay
    extra = []
    for t in np.unique(np.round(on, 2)):
        if t_det.size == 0 or np.min(np.abs(t_det - t)) > MATCH_S:
            h = int(np.searchsorted(ends, t + rng.uniform(0.004, 0.016)))
            if 4 <= h < n_hops - 8:
                extra.append(h)
    hops = np.asarray(det + extra, dtype=np.int64)
    real = np.asarray([True] * len(det) + [False] * len(extra))
    order = np.argsort(hops, kind="stable")
    hops, real = hops[order], real[order]
    t_a = ends[hops] - ONSET_OFFSET_S
    y = np.zeros((hops.size, N_KEYS), dtype=np.float32)
    if hops.size:
        for t, k in zip(on, keys, strict=True):
            if not 0 <= k < N_KEYS:
                continue
            i = int(np.argmin(np.abs(t_a - t)))
            if abs(t_a[i] - t) <= MATCH_S:
                y[i, k] = 1.0
    return hops, y, real


def load(
    clips: Path, feats: Path, stems: list[str], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[str, int, int]]]:
    """Stacked inputs (n, N_ROWS, N_GRID) float16, labels, real flags, and per-example
    (stem, copy, hop) for the note-level evaluation."""
    xs, ys, rs, meta = [], [], [], []
    rel, srel = np.asarray(REL_HOPS), np.asarray(SHORT_REL_HOPS)
    for stem in stems:
        notes = json.loads((clips / f"{stem}.json").read_text())["notes"]
        for f in sorted(feats.glob(f"{stem}.*.npz")):
            z = np.load(f)
            hops, y, real = anchors_and_labels(notes, z["onset_hops"], z["frame_end_s"], rng)
            if not hops.size:
                continue
            long = z["grid"][hops[:, None] + rel[None, :]]
            short = z["grid_short"][hops[:, None] + srel[None, :]]
            xs.append(np.concatenate([long, short], axis=1))
            ys.append(y)
            rs.append(real)
            copy = int(f.stem.split(".")[1])
            meta += [(stem, copy, int(h)) for h in hops]
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(rs), meta


class Net(nn.Module):
    """Mirror of :class:`edge_server.dsp.onsetnotes.OnsetNoteNet` (batch norms folded into
    the convolutions at export, :func:`folded`)."""

    def __init__(self, c1: int, c2: int, c3: int) -> None:
        super().__init__()
        h = len(HARMONICS)
        self.shifts = harmonic_shifts(HARMONICS)
        self.conv1 = nn.Conv1d(N_ROWS * h, c1, 3, padding=1)
        self.bn1 = nn.BatchNorm1d(c1)
        self.conv2 = nn.Conv1d(c1, c2, 3, padding=1)
        self.bn2 = nn.BatchNorm1d(c2)
        self.ctx = nn.Conv1d(c2 * len(CONTEXT_KEYS), c3, 1)
        self.bn3 = nn.BatchNorm1d(c3)
        self.out = nn.Conv1d(c3, 1, 1)
        nn.init.constant_(self.out.bias, -4.0)  # most keys are not struck
        key_bins = [(p - GRID_MIDI_LO) * BINS_PER_SEMITONE for p in range(LOWEST, LOWEST + N_KEYS)]
        self.key_taps = torch.tensor([b + k for b in key_bins for k in (-1, 0, 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, N_ROWS, N_GRID)
        lo, hi = -min(self.shifts), max(self.shifts)
        xp = nn.functional.pad(x, (lo, hi))
        st = torch.cat([xp[:, :, lo + s : lo + s + N_GRID] for s in self.shifts], dim=1)
        z = torch.relu(self.bn1(self.conv1(st)))
        # conv2 only at the key bins: (B, c1, 88, 3) taps around each key's fundamental
        taps = z[:, :, self.key_taps].reshape(z.shape[0], z.shape[1], N_KEYS, 3)
        z = torch.einsum("bckt,oct->bok", taps, self.conv2.weight) + self.conv2.bias[:, None]
        z = torch.relu(self.bn2(z))  # (B, c2, 88)
        m = max(abs(o) for o in CONTEXT_KEYS)
        zp = nn.functional.pad(z, (m, m))
        ctx = torch.cat([zp[:, :, m + o : m + o + N_KEYS] for o in CONTEXT_KEYS], dim=1)
        return self.out(torch.relu(self.bn3(self.ctx(ctx))))[:, 0]  # logits (B, 88)


def folded(net: Net) -> dict[str, np.ndarray]:
    """The exported tensors: each batch norm (eval statistics) folded into its convolution."""
    out = {}
    for conv, bn, name in ((net.conv1, net.bn1, "conv1"), (net.conv2, net.bn2, "conv2"),
                           (net.ctx, net.bn3, "ctx")):  # fmt: skip
        scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
        out[f"{name}.weight"] = (conv.weight.detach() * scale[:, None, None]).numpy()
        bias = (conv.bias.detach() - bn.running_mean) * scale + bn.bias.detach()
        out[f"{name}.bias"] = bias.numpy()
    out["out.weight"] = net.out.weight.detach().numpy()
    out["out.bias"] = net.out.bias.detach().numpy()
    return out


def gain_augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Exact random gain in the log1p domain: m -> g m, x = log10(1 + 1000 m)."""
    g = torch.from_numpy(10 ** (rng.uniform(-18, 6, (x.shape[0], 1, 1)) / 20)).float()
    return torch.log10(1 + g * (10**x - 1))


def note_f1(prob: np.ndarray, y: np.ndarray, threshold: float) -> tuple[float, float, float]:
    pred = prob >= threshold
    tp = float((pred & (y > 0)).sum())
    p = tp / max(pred.sum(), 1)
    r = tp / max((y > 0).sum(), 1)
    return p, r, 2 * p * r / max(p + r, 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--feats", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--channels", type=int, nargs=3, default=(32, 32, 32))
    ap.add_argument("--holdout-piano", default="")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    stems = sorted(p.stem for p in a.data.glob("*.json"))
    piano = {s: json.loads((a.data / f"{s}.json").read_text())["piano"] for s in stems}
    held = [
        s for s in stems if s.endswith("0") or (a.holdout_piano and a.holdout_piano in piano[s])
    ]
    train = [s for s in stems if s not in held]
    t0 = time.time()
    xtr, ytr, _, _ = load(a.data, a.feats, train, rng)
    xva, yva, rva, _ = load(a.data, a.feats, held, rng)
    print(f"train {xtr.shape} val {xva.shape} ({time.time() - t0:.0f} s)", flush=True)
    net = Net(*a.channels)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    n_poly = ytr.sum(axis=1)
    per_epoch = (
        int((n_poly <= 1).sum()) // 2 + int((n_poly == 2).sum()) + 2 * int((n_poly >= 3).sum())
    )
    steps = a.epochs * (per_epoch // a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps)
    lossf = nn.BCEWithLogitsLoss()
    xv = torch.from_numpy(xva.astype(np.float32))
    poly = ytr.sum(axis=1)
    for ep in range(a.epochs):
        net.train()
        # chords are rarer than single strikes in the clips but are where the classifier errs:
        # each epoch sees half of the anchors with at most one key, every two-key anchor and
        # every anchor of three or more keys twice
        few = np.flatnonzero(poly <= 1)
        many = np.flatnonzero(poly >= 3)
        perm = rng.permutation(
            np.concatenate(
                [
                    rng.choice(few, len(few) // 2, replace=False),
                    np.flatnonzero(poly == 2),
                    many,
                    many,
                ]
            )
        )
        tl, t0 = 0.0, time.time()
        for i in range(len(perm) // a.batch):
            idx = perm[i * a.batch : (i + 1) * a.batch]
            xb = gain_augment(torch.from_numpy(xtr[idx].astype(np.float32)), rng)
            loss = lossf(net(xb), torch.from_numpy(ytr[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tl += float(loss.detach())
        net.eval()
        with torch.no_grad():
            pv = torch.cat(
                [torch.sigmoid(net(xv[i : i + 2048])) for i in range(0, len(xv), 2048)]
            ).numpy()
        best = max(
            ((note_f1(pv[rva], yva[rva], t), t) for t in np.arange(0.2, 0.96, 0.05)),
            key=lambda b: b[0][2],
        )
        print(
            f"epoch {ep} loss {tl / max(1, len(perm) // a.batch):.4f} "
            f"val(real anchors) P/R/F1 {best[0][0]:.3f}/{best[0][1]:.3f}/{best[0][2]:.3f} "
            f"@{best[1]:.2f} ({time.time() - t0:.0f} s)",
            flush=True,
        )
    export_weights(a.out, folded(net))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
