"""``edge-client`` against a real server, and the in-process path giving the same answers."""

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from clients import cli
from edge_server.app import EdgeNode
from tests.signals import piano_like

ONSETS = [0.3, 0.7, 1.1, 1.45]


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    x = piano_like(
        sample_rate_hz=44100, duration_s=2.0, onsets_s=ONSETS, f0_hz=[262.0, 330.0, 392.0, 523.0]
    )
    path = tmp_path / "in" / "piece.wav"
    path.parent.mkdir()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    return path


async def test_stream_writes_onsets_and_prints_json(
    node: EdgeNode, wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = cli._parser().parse_args(
        [
            "stream",
            str(wav),
            "--target",
            f"127.0.0.1:{node.grpc_port}",
            "--out-dir",
            str(out),
            "--json",
        ]
    )
    assert await cli._cmd_stream(args) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(line)
    assert summary["onsets"] == 4 and summary["latency_ms"]["p99"] is not None
    got = [float(s) for s in (out / "piece.onsets.txt").read_text().split()]
    np.testing.assert_allclose(got, ONSETS, atol=0.015)


async def test_eval_in_process_equals_grpc(node: EdgeNode, wav: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "grpc", tmp_path / "local"
    p = cli._parser()
    files = [wav]
    await cli._cmd_eval(
        p.parse_args(
            [
                "eval",
                str(wav.parent),
                "--out-dir",
                str(a),
                "--target",
                f"127.0.0.1:{node.grpc_port}",
            ]
        ),
        files,
    )
    await cli._cmd_eval(p.parse_args(["eval", str(wav.parent), "--out-dir", str(b)]), files)
    assert (a / "piece.onsets.txt").read_text() == (b / "piece.onsets.txt").read_text()
    assert len((a / "piece.onsets.txt").read_text().split()) == 4


def test_main_reports_connection_failure(wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["stream", str(wav), "--target", "127.0.0.1:1"])
    assert code == 1
    assert "UNAVAILABLE" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--analyses", "onsets,bogus"], "--analyses: unknown 'BOGUS'; allowed: ONSETS, FEATURES"),
        (["--analyses", ","], "--analyses: none given; allowed: ONSETS"),
        (["--chunk-frames", "0"], "--chunk-frames: must be in [1, 10000000], not 0"),
        (["--chunk-frames", "1k"], "--chunk-frames: not an integer: '1k'"),
        (["--opus-bitrate", "0"], "--opus-bitrate: must be in [500, 512000], not 0"),
    ],
)
def test_bad_arguments_are_refused_with_the_allowed_values(
    wav: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad option is a usage error (exit 2) naming the option and what it allows, before
    any connection (the target does not exist); it was a KeyError traceback, a silent
    zero-chunk stream or an opuslib error."""
    with pytest.raises(SystemExit) as e:
        cli.main(["stream", str(wav), "--target", "127.0.0.1:1", *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_webrtc_refuses_the_refined_tier(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["webrtc", "x.wav", "--url", "http://127.0.0.1:1", "--analyses", "refined_notes"])
    assert e.value.code == 2
    assert "unknown 'REFINED_NOTES'; allowed: ONSETS, FEATURES, NOTES" in capsys.readouterr().err
