"""The analysis's DSP cost in two checkouts, side by side (for a change's before/after).

    git worktree add /tmp/base <rev>          # the tree before the change
    python -m loadtests.dsp_ab --base /tmp/base [--new .] [--pairs 10]

Runs ``loadtests.accuracy._dsp_cost`` of each tree in its own fresh process, alternating
base/new (the order flipped every pair), ``--pairs`` times: the fast tier (onsets + fast
notes) with 64, 16 and 4 streams batched (5, 10, 20 s of each) and one stream alone (20 s),
and onsets alone with 64 streams; the best of 2 passes per process. On a shared, noisy
machine the figure to read is the median of the per-pair ratios new / base (with its
quartiles), not either tree's absolute cost. Prints one line per measure, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from loadtests.accuracy import _dsp_cost, read_wav
files = [read_wav(p) for p in sorted(Path(sys.argv[2]).glob("*.wav"))]
best = lambda **kw: min(_dsp_cost(files, **kw) for _ in range(2))
print(json.dumps({
    "fast_64": best(streams=64, notes=True, seconds_s=5.0),
    "fast_16": best(streams=16, notes=True, seconds_s=10.0),
    "fast_4": best(streams=4, notes=True, seconds_s=20.0),
    "fast_1": best(streams=1, notes=True, seconds_s=20.0),
    "onsets_64": best(streams=64, notes=False, seconds_s=5.0),
}))
"""


def _run(tree: Path, corpus: Path) -> dict[str, float]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tree), str(corpus)],
        capture_output=True, text=True, env=env, cwd=tree, check=True,
    )  # fmt: skip
    r: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base", type=Path, required=True, help="checkout before the change")
    p.add_argument("--new", type=Path, default=Path("."), help="checkout after it")
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument(
        "--corpus",
        type=Path,
        default=Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "public",
    )
    a = p.parse_args()
    base, new = a.base.resolve(), a.new.resolve()
    pairs = []
    for i in range(a.pairs):
        if i % 2:
            n = _run(new, a.corpus)
            b = _run(base, a.corpus)
        else:
            b = _run(base, a.corpus)
            n = _run(new, a.corpus)
        pairs.append((b, n))
    res: dict[str, dict[str, float]] = {}
    for k in pairs[0][0]:
        ratios = [n[k] / b[k] for b, n in pairs]
        q25, q75 = (float(q) for q in np.percentile(ratios, [25, 75]))
        res[k] = {
            "base": float(np.median([b[k] for b, _ in pairs])),
            "new": float(np.median([n[k] for _, n in pairs])),
            "ratio": float(np.median(ratios)),
            "ratio_q25": q25,
            "ratio_q75": q75,
        }
        r = res[k]
        print(
            f"{k}: base {r['base']:.5f} new {r['new']:.5f} CPU-s/s per stream; new/base "
            f"{r['ratio']:.3f} (quartiles {q25:.3f}-{q75:.3f})"
        )
    print(json.dumps({"pairs": a.pairs, **res}))


if __name__ == "__main__":
    main()
