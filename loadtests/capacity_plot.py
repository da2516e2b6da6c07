"""The capacity bench's plot: audio-to-result latency against sessions, every level."""

from __future__ import annotations

from pathlib import Path


def plot_levels(rows: dict[str, list[dict[str, object]]], path: Path, *, limit_ms: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    colours = {
        "edge": "tab:blue",
        "echo": "tab:grey",
        "edge-own": "tab:green",
        "edge-offgil": "tab:orange",
    }
    names = {
        "edge": "seminote-edge (onsets+features+fast notes)",
        "echo": "echo floor",
        "edge-own": "seminote-edge, workers' own ports",
        "edge-offgil": "seminote-edge, analysis modelled off the GIL",
    }
    for kind, runs in rows.items():
        for r, run in enumerate(runs):
            lv = sorted(run["levels"], key=lambda x: x["sessions"])  # type: ignore[arg-type, index]
            xs = [x["sessions"] for x in lv]
            ax.plot(xs, [x["p99_ms"] for x in lv], "o-", color=colours[kind], alpha=0.8,
                    label=f"{names[kind]} p99" if r == 0 else None)  # fmt: skip
            ax.plot(xs, [x["p50_ms"] for x in lv], "x--", color=colours[kind], alpha=0.5,
                    label=f"{names[kind]} p50" if r == 0 else None)  # fmt: skip
    ax.axhline(limit_ms, color="tab:red", lw=1, ls=":", label=f"p99 limit {limit_ms:g} ms")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent real-time sessions (1024-frame chunks, 43 msg/s each)")
    ax.set_ylabel("audio-to-result latency, ms")
    ax.set_title("Latency vs sessions on one 2-core node (generators on the same machine)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
