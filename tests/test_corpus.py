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


def _score(pred: Path, gt: Path) -> float:
    out = subprocess.run(
        [sys.executable, str(CORPUS / "score.py"), str(pred), str(gt)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"mean onset\s+P=\S+\s+R=\S+\s+F1=([0-9.]+)", out)
    assert m, out
    return float(m.group(1))


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
        name = f"{f.stem}.onsets.txt"
        assert (over_grpc / name).read_text() == (local / name).read_text(), name
    f1 = _score(over_grpc, gt)
    print(f"public corpus onset F1 over gRPC: {f1:.3f}")
    assert f1 >= 0.95


async def test_noisy_corpus_over_grpc(node: EdgeNode, tmp_path: Path) -> None:
    noisy = corpus_public() / "noisy"
    files = sorted(noisy.glob("*.wav"))
    args = cli._parser().parse_args(
        ["eval", str(noisy), "--out-dir", str(tmp_path), "--target", f"127.0.0.1:{node.grpc_port}"]
    )
    await cli._cmd_eval(args, files)
    f1 = _score(tmp_path, noisy)
    print(f"noisy corpus onset F1 over gRPC: {f1:.3f}")
    assert f1 >= 0.88
