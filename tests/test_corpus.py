"""Acceptance on the public corpus: the whole split streamed through a real gRPC server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from clients import cli
from edge_server.app import EdgeNode
from tests.conftest import CORPUS, corpus_public

pytestmark = pytest.mark.corpus
REFINED_FLOOR_CLEAN = 0.87
REFINED_FLOOR_NOISY = 0.75
FAST_FLOOR_CLEAN = 0.70
FAST_FLOOR_NOISY = 0.62


def _score(pred: Path, gt: Path, what: str = "onset") -> float:
    out = subprocess.run(
        [sys.executable, str(CORPUS / "score.py"), str(pred), str(gt)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pattern = {"onset": r"mean onset", "note": r"mean note \(onset-only\)"}[what]
    m = re.search(pattern + r"\s+P=\S+\s+R=\S+\s+F1=([0-9.]+)", out)
    assert m, out
    return float(m.group(1))


def _fast_dir(src: Path) -> Path:
    """score.py reads <id>.notes.csv: a copy of the fast tier under that name."""
    dst = src.parent / f"{src.name}-fast"
    dst.mkdir()
    for f in src.glob("*.fast.notes.csv"):
        (dst / f.name.replace(".fast.notes.csv", ".notes.csv")).write_bytes(f.read_bytes())
    return dst


async def test_public_corpus_over_grpc_scores_and_matches_in_process(
    node: EdgeNode, tmp_path: Path
) -> None:
    gt = corpus_public()
    files = sorted(gt.glob("*.wav"))
    assert len(files) == 15
    p = cli._parser()
    over_grpc, local = tmp_path / "grpc", tmp_path / "local"
    target = f"127.0.0.1:{node.grpc_port}"
    args = p.parse_args(["eval", str(gt), "--out-dir", str(over_grpc), "--target", target])
    await cli._cmd_eval(args, files)
    await cli._cmd_eval(p.parse_args(["eval", str(gt), "--out-dir", str(local)]), files)
    for f in files:
        for name in (f"{f.stem}.onsets.txt", f"{f.stem}.notes.csv", f"{f.stem}.fast.notes.csv"):
            assert (over_grpc / name).read_text() == (local / name).read_text(), name
    f1 = _score(over_grpc, gt)
    refined = _score(over_grpc, gt, "note")
    fast = _score(_fast_dir(over_grpc), gt, "note")
    print(
        f"public corpus over gRPC: onset F1 {f1:.3f}, "
        f"notes F1 fast {fast:.3f} refined {refined:.3f}"
    )
    # regression floors a little under the figures in BENCHMARKS.md (onsets 0.979 clean since
    # the GRU network at its held-out threshold 0.35; it was 0.989)
    assert f1 >= 0.97
    assert refined >= REFINED_FLOOR_CLEAN
    assert fast >= FAST_FLOOR_CLEAN


async def test_noisy_corpus_over_grpc(node: EdgeNode, tmp_path: Path) -> None:
    noisy = corpus_public() / "noisy"
    files = sorted(noisy.glob("*.wav"))
    args = cli._parser().parse_args(
        ["eval", str(noisy), "--out-dir", str(tmp_path), "--target", f"127.0.0.1:{node.grpc_port}"]
    )
    await cli._cmd_eval(args, files)
    f1 = _score(tmp_path, noisy)
    refined = _score(tmp_path, noisy, "note")
    fast = _score(_fast_dir(tmp_path), noisy, "note")
    print(
        f"noisy corpus over gRPC: onset F1 {f1:.3f}, notes F1 fast {fast:.3f} refined {refined:.3f}"
    )
    assert f1 >= 0.90  # 0.914 (0.874 before the GRU network)
    assert refined >= REFINED_FLOOR_NOISY
    assert fast >= FAST_FLOOR_NOISY
