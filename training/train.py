"""Train the causal onset network on features of self-rendered clips; export numpy weights.

    python -m training.train --data training/data --feats training/feats \
        --out edge_server/dsp/models/notenet.npz [--epochs 30]

Needs PyTorch (CPU is enough: ``pip install torch``); the server itself runs the exported
weights with numpy (:mod:`edge_server.dsp.notenet`). Clips whose number ends in 0 are held
out for validation; the decision thresholds in :mod:`training.tune` are chosen on them.

Targets per hop, from the MIDI of each clip (``frame_end`` = stream time at the end of the
hop): onset = a note-on in ``[frame_end - 24 ms, frame_end - 2 ms]``; velocity = loudest
strike within that window / 127.
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

from edge_server.dsp.notenet import InputSpec
from training.features import with_odf

ONSET_WIN = (0.002, 0.024)
TAPS = (0, 1, 2, 4, 8, 16)


def labels(notes: list[list[float]], ends: np.ndarray) -> np.ndarray:
    """(n_frames, 2) float32 targets: onset, velocity (-1 = no strike in the window)."""
    n = ends.shape[0]
    y = np.zeros((n, 2), dtype=np.float32)
    y[:, -1] = -1.0
    hop = float(ends[1] - ends[0])
    for on, _, _, vel in notes:
        i0 = max(int(np.ceil((on + ONSET_WIN[0] - ends[0]) / hop - 1e-9)), 0)
        i1 = min(int(np.floor((on + ONSET_WIN[1] - ends[0]) / hop + 1e-9)) + 1, n)
        y[i0:i1, 0] = 1.0
        y[i0:i1, -1] = np.maximum(y[i0:i1, -1], vel / 127.0)
    return y


class Net(nn.Module):
    """Mirror of :class:`edge_server.dsp.notenet.NoteNet` (see its module docstring); with
    ``n_gru > 0`` a GRU over ``h1`` adds a long-context vector to the taps of layer B."""

    def __init__(self, n_in: int, n_h1: int, n_h2: int, n_gru: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv1d(n_in, n_h1, kernel_size=3)
        self.gru = nn.GRU(n_h1, n_gru, batch_first=True) if n_gru else None
        self.b = nn.Linear(n_h1 * len(TAPS) + n_gru, n_h2)
        self.c = nn.Linear(n_h2, 2)  # onset, velocity

    def forward(self, xn: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, 2) of normalised inputs (B, T, n_in)."""
        h1 = torch.relu(self.conv(nn.functional.pad(xn.transpose(1, 2), (2, 0))))
        d = max(TAPS)
        hp = nn.functional.pad(h1, (d, 0))
        t = xn.shape[1]
        parts = [hp[:, :, d - s : d - s + t].transpose(1, 2) for s in TAPS]
        if self.gru is not None:
            parts.append(self.gru(h1.transpose(1, 2))[0])
        return self.c(torch.relu(self.b(torch.cat(parts, dim=2))))


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
    ap.add_argument("--val-every", type=int, default=5)
    ap.add_argument("--gru", type=int, default=0, help="GRU units (0: none)")
    ap.add_argument("--burn-in", type=int, default=0, help="hops of each crop not scored")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    spec = InputSpec()
    clips = load(a.data, a.feats)
    train = [c for c in clips if not c[0].endswith("0")]
    val = [c for c in clips if c[0].endswith("0")]
    allx = np.concatenate([c[1] for c in train[::3]])
    mean, std = allx.mean(axis=0), allx.std(axis=0) + 1e-3
    net = Net(mean.shape[0], a.h1, a.h2, a.gru)
    del allx
    print(f"{len(train)} train / {len(val)} val feature files, n_in={mean.shape[0]}", flush=True)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    steps_per_epoch = sum(c[1].shape[0] for c in train) // (a.crop * a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=a.lr, total_steps=a.epochs * steps_per_epoch
    )
    bce = nn.BCEWithLogitsLoss(reduction="none")
    warm = max(max(TAPS) + 2, a.burn_in)

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

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out, y = out[:, warm:], y[:, warm:]
        lo = bce(out[..., 0], y[..., 0]).mean()
        vm = y[..., 1] >= 0
        lv = ((torch.sigmoid(out[..., 1]) - y[..., 1]) ** 2)[vm].mean() if vm.any() else lo * 0
        return lo + lv

    def norm(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((x - mean) / std).astype(np.float32))

    for ep in range(a.epochs):
        net.train()
        t0 = time.time()
        tot = 0.0
        for _ in range(steps_per_epoch):
            xb, yb = batch(train, a.batch)
            loss = loss_fn(net(norm(xb)), torch.from_numpy(yb))
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
                        float(loss_fn(net(norm(x[None])), torch.from_numpy(y)[None]))
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
    gru: dict[str, np.ndarray] = {}
    if net.gru is not None:  # PyTorch's gate order r, z, n; weights as (in, 3 n_gru)
        gru = {
            "G_ih": net.gru.weight_ih_l0.detach().numpy().T,
            "G_hh": net.gru.weight_hh_l0.detach().numpy().T,
            "g_ih": net.gru.bias_ih_l0.detach().numpy(),
            "g_hh": net.gru.bias_hh_l0.detach().numpy(),
        }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        a.out,
        A0=w[:, :, 2].T, A1=w[:, :, 1].T, A2=w[:, :, 0].T, a=bias(net.conv),
        B=t(net.b), b=bias(net.b), C=t(net.c), c=bias(net.c),
        taps=np.array(TAPS), mean=mean, std=std, **specd, **gru,
    )  # fmt: skip
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
