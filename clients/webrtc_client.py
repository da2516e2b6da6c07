"""A Python WebRTC client (aiortc): streams a WAV like a browser would, reads the DataChannel."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .results import drop_retracted
from .wav import WavAudio, _resample

RATE_HZ = 48_000
FRAME = 960  # 20 ms


def to_48k_mono_int16(audio: WavAudio) -> np.ndarray:
    if audio.encoding == "PCM16_LE":
        x = np.frombuffer(audio.data, "<i2").astype(np.float32) / 32768.0
    else:
        x = np.frombuffer(audio.data, "<f4").astype(np.float32)
    x = x.reshape(-1, audio.channels).mean(axis=1, keepdims=True)
    if audio.sample_rate_hz != RATE_HZ:
        x = _resample(x, audio.sample_rate_hz, RATE_HZ)
    pcm = (np.clip(x[:, 0], -1, 1) * 32767).astype(np.int16)
    return np.concatenate([pcm, np.zeros((-len(pcm)) % FRAME, np.int16)])


class PcmTrack(MediaStreamTrack):
    """Audio track that plays int16 mono 48 kHz samples in 20 ms frames at real-time pace."""

    kind = "audio"

    def __init__(self, pcm: np.ndarray) -> None:
        super().__init__()
        self._pcm = pcm
        self._pos = 0
        self._t0: float | None = None
        self.sent_at: list[float] = []

    @property
    def n_frames(self) -> int:
        return len(self._pcm) // FRAME

    async def recv(self) -> av.AudioFrame:
        if self._pos >= len(self._pcm):
            self.stop()
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
        delay = self._t0 + self._pos / RATE_HZ - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = self._pcm[self._pos : self._pos + FRAME]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE_HZ
        frame.pts = self._pos
        frame.time_base = fractions.Fraction(1, RATE_HZ)
        self._pos += FRAME
        self.sent_at.append(time.monotonic())
        return frame


@dataclass
class WebRtcResult:
    session_id: str = ""
    onsets: list[float] = field(default_factory=list)
    #: fast-tier notes (with ``NOTES``) by note id: (onset_s, offset_s, midi_pitch), offset 0
    #: until the note's OFF came
    notes: dict[int, tuple[float, float, int]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    #: the node's own time per result (frame received to result queued), ms
    server_ms: list[float] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    messages: int = 0
    #: the node's ``{"t": "error"}`` message, if it ended the session (e.g. a refusal)
    error: dict[str, Any] | None = None


async def stream_webrtc(
    url: str,
    audio: WavAudio,
    *,
    timeout_s: float = 30.0,
    analyses: tuple[str, ...] | None = None,
) -> WebRtcResult:
    """Offer to ``url``/api/v1/webrtc/offer, stream ``audio``, collect results until the end.
    ``analyses``: e.g. ``("ONSETS", "FEATURES", "NOTES")``; ``None``: the node's default."""
    pcm = to_48k_mono_int16(audio)
    track = PcmTrack(pcm)
    pc = RTCPeerConnection()
    channel = pc.createDataChannel("results")
    result = WebRtcResult()
    done = asyncio.Event()
    last_pos = 0.0

    @channel.on("message")
    def on_message(raw: str) -> None:
        nonlocal last_pos
        msg = json.loads(raw)
        result.messages += 1
        now = time.monotonic()
        if msg["t"] == "r":
            last_pos = msg["pos"]
            idx = round(msg["pos"] * RATE_HZ / FRAME) - 1
            if 0 <= idx < len(track.sent_at):
                result.latencies_ms.append((now - track.sent_at[idx]) * 1000)
            result.onsets += [o[0] for o in msg.get("on", [])]
            # withdrawn onsets: their times exactly as sent in "on"
            drop_retracted(result.onsets, msg.get("xon", ()), lambda t: t)
            result.server_ms.append(msg.get("srv_ms", 0.0))
            for nid, action, pitch, onset_s, offset_s, *_ in msg.get("n", []):
                if action == "ON":
                    result.notes[nid] = (onset_s, 0.0, pitch)
                elif action == "OFF" and nid in result.notes:
                    result.notes[nid] = (onset_s, offset_s, pitch)
        elif msg["t"] == "started":
            result.session_id = msg["session_id"]
        elif msg["t"] == "end":
            result.summary = msg["summary"]
            done.set()
        elif msg["t"] == "error":
            result.error = msg

    pc.addTrack(track)
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        body: dict[str, Any] = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
        if analyses is not None:
            body["options"] = {"analyses": list(analyses)}
        async with http.post(f"{url.rstrip('/')}/api/v1/webrtc/offer", json=body) as r:
            text = await r.text()
            try:
                answer = json.loads(text)
            except ValueError:  # e.g. a proxy's HTML error page
                answer = None
            if r.status != 200 or not isinstance(answer, dict):
                await pc.close()
                raise ConnectionError(f"offer refused: {r.status} {answer or text[:200]!r}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
    total_s = track.n_frames * FRAME / RATE_HZ
    try:
        deadline = time.monotonic() + total_s + timeout_s
        # all audio sent and its results back (or 2 s of silence from the server)
        while time.monotonic() < deadline and last_pos < total_s - 1e-6:
            await asyncio.sleep(0.05)
            if len(track.sent_at) == track.n_frames and time.monotonic() - track.sent_at[-1] > 2.0:
                break
        if channel.readyState == "open":
            channel.send(json.dumps({"t": "end"}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 5.0)
    finally:
        await pc.close()
    return result
