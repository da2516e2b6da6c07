"""Train the causal note network on features of self-rendered clips; export numpy weights.

    python -m training.train --data training/data --feats training/feats \
        --out edge_server/dsp/models/notenet.npz [--epochs 30]

Needs PyTorch (CPU is enough: ``pip install torch``); the server itself runs the exported
weights with numpy (:mod:`edge_server.dsp.notenet`). Clips whose number ends in 0 are held
out for validation; the decision thresholds in :mod:`training.tune` are chosen on them.

Targets per hop, from the MIDI of each clip (``frame_end`` = stream time at the end of the
hop): onset = a note-on in ``[frame_end - 24 ms, frame_end - 2 ms]``; key onset = that key's
note-on in ``[frame_end - 48 ms, frame_end - 2 ms]``; key on = the key held at
``frame_end - 10 ms``; velocity = loudest strike within the onset window / 127.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge_server.dsp.notenet import (
    KEY_TAPS,
    LOWEST_KEY_MIDI,
    N_KEYS,
    PROBES,
    InputSpec,
    harmonic_map,
)
from training.features import with_odf

ONSET_WIN = (0.002, 0.024)
KEY_ONSET_WIN = (0.002, 0.048)
KEY_ON_LAG_S = 0.010
TAPS = (0, 1, 2, 4, 8, 16)


def labels(notes: list[list[float]], ends: np.ndarray) -> np.ndarray:
    """(n_frames, 1 + 88 + 88 + 1) float32 targets (velocity in the last column, -1 = none)."""
    n = ends.shape[0]
    y = np.zeros((n, 2 + 2 * N_KEYS), dtype=np.float32)
    y[:, -1] = -1.0
    hop = float(ends[1] - ends[0])
    for on, off, pitch, vel in notes:
        k = int(pitch) - LOWEST_KEY_MIDI
        if not 0 <= k < N_KEYS:
            continue

        def rng(a: float, b: float) -> tuple[int, int]:
            i0 = int(np.ceil((a - ends[0]) / hop - 1e-9))
            i1 = int(np.floor((b - ends[0]) / hop + 1e-9))
            return max(i0, 0), min(i1 + 1, n)

        i0, i1 = rng(on + ONSET_WIN[0], on + ONSET_WIN[1])
        y[i0:i1, 0] = 1.0
        y[i0:i1, -1] = np.maximum(y[i0:i1, -1], vel / 127.0)
        i0, i1 = rng(on + KEY_ONSET_WIN[0], on + KEY_ONSET_WIN[1])
        y[i0:i1, 1 + k] = 1.0
        i0, i1 = rng(on + KEY_ON_LAG_S, max(off, on + 0.05) + KEY_ON_LAG_S)
        y[i0:i1, 1 + N_KEYS + k] = 1.0
    return y


class Net(nn.Module):
    """Mirror of :class:`edge_server.dsp.notenet.NoteNet` (see its module docstring)."""

    def __init__(
        self, n_in: int, n_h1: int, n_h2: int, n_g: int, n_z: int, spec: InputSpec
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(n_in, n_h1, kernel_size=3)
        self.b = nn.Linear(n_h1 * len(TAPS), n_h2)
        self.c = nn.Linear(n_h2, 2)  # onset, velocity
        self.g = nn.Linear(n_h2, n_g)
        lo, hi, w = harmonic_map(spec)
        self.register_buffer("lo", torch.from_numpy(lo))
        self.register_buffer("hi", torch.from_numpy(hi))
        self.register_buffer("w", torch.from_numpy(w))
        self.register_buffer("key_pos", torch.from_numpy(key_positions()))
        self.register_buffer("h_mean", torch.zeros(N_KEYS, len(PROBES)))
        self.register_buffer("h_std", torch.ones(N_KEYS, len(PROBES)))
        n_h = len(KEY_TAPS) * len(PROBES)
        self.k1 = nn.Linear(n_h + n_g + self.key_pos.shape[1], n_z)
        self.k2 = nn.Linear(n_z, 2)  # key onset, key on

    def patterns(self, raw: torch.Tensor) -> torch.Tensor:  # raw long bands (B, T, n_long)
        a = raw[..., self.lo]
        b = raw[..., self.hi]
        e = (a + (b - a) * self.w.clamp(min=0)) * (self.w >= 0)
        return e.reshape(*raw.shape[:2], N_KEYS, len(PROBES))

    def forward(
        self, xn: torch.Tensor, raw_long: torch.Tensor, sel: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits; with ``sel`` (frame indices) the key part runs on those frames only."""
        h1 = torch.relu(self.conv(nn.functional.pad(xn.transpose(1, 2), (2, 0))))
        d = max(TAPS)
        hp = nn.functional.pad(h1, (d, 0))
        t = xn.shape[1]
        taps = torch.cat([hp[:, :, d - s : d - s + t] for s in TAPS], dim=1).transpose(1, 2)
        h2 = torch.relu(self.b(taps))
        glob = self.c(h2)  # (B, T, 2) logits
        g = torch.relu(self.g(h2))  # (B, T, n_g)
        e = (self.patterns(raw_long) - self.h_mean) / self.h_std  # (B, T, 88, P)
        kd = max(KEY_TAPS)
        ep = nn.functional.pad(e, (0, 0, 0, 0, kd, 0))
        feats = torch.cat([ep[:, kd - s : kd - s + t] for s in KEY_TAPS], dim=3)
        if sel is not None:
            feats, g = feats[:, sel], g[:, sel]
        b_, t_ = feats.shape[:2]
        parts = [
            feats,
            g[:, :, None, :].expand(b_, t_, N_KEYS, g.shape[-1]),
            self.key_pos[None, None].expand(b_, t_, N_KEYS, self.key_pos.shape[1]),
        ]
        z = torch.relu(self.k1(torch.cat(parts, dim=3)))
        return glob, self.k2(z)  # (B, T, 88, 2) logits


def key_positions() -> np.ndarray:
    """(88, 3) float32: a smooth code of where a key sits on the keyboard."""
    u = np.linspace(-1, 1, N_KEYS)
    return np.stack([u, u * u, np.abs(u)], axis=1).astype(np.float32)


def load(data: Path, feats: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for f in sorted(feats.glob("*.npz")):
        stem = f.name.split(".")[0]
        z = np.load(f)
        notes = json.loads((data / f"{stem}.json").read_text())["notes"]
        x = with_odf(z["x"].astype(np.float32))
        out.append((stem, x, labels(notes, z["frame_end_s"])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("training/data"))
    ap.add_argument("--feats", type=Path, default=Path("training/feats"))
    ap.add_argument("--out", type=Path, default=Path("edge_server/dsp/models/notenet.npz"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--h1", type=int, default=64)
    ap.add_argument("--h2", type=int, default=128)
    ap.add_argument("--crop", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--g", type=int, default=16)
    ap.add_argument("--z", type=int, default=32)
    ap.add_argument("--val-every", type=int, default=5)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(2)
    rng = np.random.default_rng(a.seed)
    spec = InputSpec()
    n_long = spec.long_fb().shape[1]
    clips = load(a.data, a.feats)
    train = [c for c in clips if not c[0].endswith("0")]
    val = [c for c in clips if c[0].endswith("0")]
    allx = np.concatenate([c[1] for c in train[::3]])
    mean, std = allx.mean(axis=0), allx.std(axis=0) + 1e-3
    net = Net(mean.shape[0], a.h1, a.h2, a.g, a.z, spec)
    with torch.no_grad():
        e = net.patterns(torch.from_numpy(allx[None, ::4, :n_long]))[0]
        net.h_mean.copy_(e.mean(dim=0))
        net.h_std.copy_(e.std(dim=0) + 1e-2)
    del allx
    print(f"{len(train)} train / {len(val)} val feature files, n_in={mean.shape[0]}", flush=True)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    steps_per_epoch = sum(c[1].shape[0] for c in train) // (a.crop * a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=a.lr, total_steps=a.epochs * steps_per_epoch
    )
    bce = nn.BCEWithLogitsLoss(reduction="none")
    warm = max(TAPS) + 2

    def tensors(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy((x - mean) / std), torch.from_numpy(x[..., :n_long].copy())

    def batch(
        pool: list[tuple[str, np.ndarray, np.ndarray]], n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for _ in range(n):
            _, x, y = pool[int(rng.integers(len(pool)))]
            s = int(rng.integers(0, max(1, x.shape[0] - a.crop)))
            xs.append(x[s : s + a.crop])
            ys.append(y[s : s + a.crop])
        return np.stack(xs), np.stack(ys)

    def loss_fn(
        glob: torch.Tensor, keys: torch.Tensor, y: torch.Tensor, sel: torch.Tensor | None = None
    ) -> torch.Tensor:
        glob, y_all = glob[:, warm:], y[:, warm:]
        lo = bce(glob[..., 0], y_all[..., 0]).mean()
        vm = y_all[..., -1] >= 0
        lv = (
            ((torch.sigmoid(glob[..., 1]) - y_all[..., -1]) ** 2)[vm].mean() if vm.any() else lo * 0
        )
        if sel is None:
            keys, y = keys[:, warm:], y[:, warm:]
        else:
            y = y[:, sel]
        yk = y[..., 1 : 1 + N_KEYS]
        lk = (bce(keys[..., 0], yk) * (1 + 2 * yk)).mean() * 20
        lf = bce(keys[..., 1], y[..., 1 + N_KEYS : 1 + 2 * N_KEYS]).mean() * 10
        return lo + lk + lf + lv

    for ep in range(a.epochs):
        net.train()
        t0 = time.time()
        tot = 0.0
        for _ in range(steps_per_epoch):
            xb, yb = batch(train, a.batch)
            # the per-key part on a random quarter of the frames (it dominates the cost)
            sel = torch.from_numpy(
                np.sort(rng.choice(np.arange(warm, a.crop), a.crop // 4, replace=False))
            )
            loss = loss_fn(*net(*tensors(xb), sel), torch.from_numpy(yb), sel)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach())
        msg = f"epoch {ep}: train {tot / steps_per_epoch:.4f}"
        if (ep + 1) % a.val_every == 0 or ep == a.epochs - 1:
            net.eval()
            with torch.no_grad():
                vl = np.mean(
                    [
                        float(loss_fn(*net(*tensors(x[None])), torch.from_numpy(y)[None]))
                        for _, x, y in val
                    ]
                )
            msg += f" val {vl:.4f}"
        print(f"{msg} ({time.time() - t0:.0f} s)", flush=True)

    w = net.conv.weight.detach().numpy()  # (h1, n_in, 3); k=2 multiplies x_t

    def t(m: nn.Linear) -> np.ndarray:
        return m.weight.detach().numpy().T

    def bias(m: nn.Module) -> np.ndarray:
        return m.bias.detach().numpy()  # type: ignore[operator]

    specd = {f"spec_{k}": np.array(v) for k, v in asdict(spec).items()}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        a.out,
        A0=w[:, :, 2].T, A1=w[:, :, 1].T, A2=w[:, :, 0].T, a=bias(net.conv),
        B=t(net.b), b=bias(net.b), C=t(net.c), c=bias(net.c), G=t(net.g), g=bias(net.g),
        K1=t(net.k1), k1=bias(net.k1), K2=t(net.k2), k2=bias(net.k2),
        taps=np.array(TAPS), mean=mean, std=std, probes=np.array(PROBES),
        h_mean=net.h_mean.numpy(), h_std=net.h_std.numpy(), key_pos=net.key_pos.numpy(),
        **specd,
    )  # fmt: skip
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
