"""The node's HTTP API (aiohttp), versioned under /api/v1, described by docs/openapi.json."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..netutil import start_tcp_site
from ..pipeline.errors import ErrorKind, StreamError, invalid
from ..pipeline.events import NoteEvent
from ..pipeline.manager import SessionManager
from ..pipeline.offload import CpuOffloader
from ..pipeline.session import Session
from ..pipeline.settings import AnalysisKind, Encoding, make_settings
from .webrtc import WebRtcGateway

HTTP_STATUS = {
    ErrorKind.INVALID_ARGUMENT: 400,
    ErrorKind.FAILED_PRECONDITION: 412,
    ErrorKind.RESOURCE_EXHAUSTED: 429,
    ErrorKind.ALREADY_EXISTS: 409,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.OUT_OF_RANGE: 400,
    ErrorKind.ABORTED: 409,
}
MAX_CLIP_S = 60.0
MAX_BODY_BYTES = 16 << 20
CHUNK_FRAMES = 1024


_ALLOWED = ", ".join(k.value for k in AnalysisKind)


def _analyses(raw: Any, *, field: str = "analyses") -> frozenset[AnalysisKind]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list):
        raise invalid(f"{field} must be a list of {_ALLOWED}")
    try:
        return frozenset(AnalysisKind(str(a).upper()) for a in raw)
    except ValueError:
        raise invalid(f"{field}={raw!r}: allowed {_ALLOWED}") from None


def note_json(n: NoteEvent) -> dict[str, Any]:
    return {
        "note_id": n.note_id,
        "tier": n.tier.value,
        "action": n.action.value,
        "midi_pitch": n.midi_pitch,
        "onset_s": n.onset_s,
        "offset_s": n.offset_s,
        "velocity": n.velocity,
        "confidence": n.confidence,
    }


def _error(e: StreamError) -> web.Response:
    return web.json_response(
        {"error": e.kind.value, "message": e.message}, status=HTTP_STATUS[e.kind]
    )


def session_json(s: Session) -> dict[str, Any]:
    onsets, truncated = s.onset_log()
    sm = s.summary()
    return {
        "session_id": s.session_id,
        "active": s.active,
        "summary": {
            "chunks_processed": sm.chunks_processed,
            "chunks_dropped": sm.chunks_dropped,
            "chunks_lost": sm.chunks_lost,
            "chunks_malformed": sm.chunks_malformed,
            "onsets": sm.onsets,
            "stream_time_s": sm.stream_time_s,
        },
        "onsets": [
            {"time_s": o.time_s, "strength": o.strength, "detected_at_s": o.detected_at_s}
            for o in onsets
        ],
        "onsets_truncated": truncated,
        # note events of both tiers, in the order they were sent (empty without NOTES)
        "notes": [note_json(n) for n in s.note_log()],
    }


class HttpEndpoint:
    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        health: Callable[[], dict[str, object]],
        status: Callable[[], dict[str, object]],
        manager: SessionManager,
        offloader: CpuOffloader,
        gateway: WebRtcGateway | None,
        web_root: Path | None,
        host: str,
        port: int,
    ) -> None:
        self._registry = registry
        self._health = health
        self._status = status
        self._manager = manager
        self._offloader = offloader
        self._gateway = gateway
        self._host = host
        self._port = port
        self.app = web.Application(client_max_size=MAX_BODY_BYTES)
        r = self.app.router
        r.add_get("/health", self._get_health)
        r.add_get("/api/v1/health", self._get_health)
        r.add_get("/metrics", self._get_metrics)
        r.add_get("/api/v1/edge/status", self._get_status)
        r.add_get("/api/v1/results/{session_id}", self._get_results)
        r.add_post("/api/v1/audio/analyze", self._post_analyze)
        r.add_post("/api/v1/webrtc/offer", self._post_offer)
        if web_root is not None and (web_root / "index.html").exists():
            index = web_root / "index.html"

            async def get_index(request: web.Request) -> web.FileResponse:
                return web.FileResponse(index)

            r.add_get("/", get_index)
            r.add_static("/static/", web_root)
        self._runner = web.AppRunner(self.app, access_log=None)
        self.port = 0

    async def start(self) -> None:
        self.port = await start_tcp_site(self._runner, self._host, self._port)

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _get_health(self, request: web.Request) -> web.Response:
        body = self._health()
        return web.json_response(body, status=200 if body.get("status") == "SERVING" else 503)

    async def _get_metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self._registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _get_status(self, request: web.Request) -> web.Response:
        return web.json_response(self._status())

    async def _get_results(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(
                session_json(self._manager.get(request.match_info["session_id"]))
            )
        except StreamError as e:
            return _error(e)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (ValueError, RecursionError) as e:  # RecursionError: nesting too deep to parse
            raise invalid(f"body is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise invalid("body must be a JSON object")
        return body

    async def _post_analyze(self, request: web.Request) -> web.Response:
        """A short clip in one request: the same session pipeline, 1024-frame chunks."""
        try:
            body = await self._body(request)
            enc_name = str(body.get("encoding", "PCM16_LE")).upper()
            if enc_name not in ("PCM16_LE", "FLOAT32_LE"):
                raise invalid(f"encoding={enc_name!r}: allowed PCM16_LE, FLOAT32_LE")
            try:
                data = base64.b64decode(str(body.get("audio_b64", "")), validate=True)
            except (binascii.Error, ValueError):
                raise invalid("audio_b64 is not valid base64") from None
            settings = make_settings(
                sample_rate_hz=int(body.get("sample_rate_hz", 0)),
                encoding=Encoding(enc_name),
                channels=int(body.get("channels", 1)),
                analyses=_analyses(body.get("analyses")),
                session_id=str(body.get("session_id") or self._manager.new_session_id()),
                client_name="http",
            )
            frame_bytes = settings.encoding.sample_bytes * settings.channels
            duration_s = len(data) / frame_bytes / settings.sample_rate_hz
            if not data:
                raise invalid("audio_b64 is empty")
            if duration_s > MAX_CLIP_S:
                raise invalid(
                    f"clip is {duration_s:.1f} s; at most {MAX_CLIP_S:.0f} s (stream longer audio)"
                )
            session = self._manager.open(settings)
        except (TypeError, ValueError) as e:
            return _error(invalid(f"malformed field: {e}"))
        except StreamError as e:
            return _error(e)
        t0 = time.perf_counter()
        step = CHUNK_FRAMES * frame_bytes
        features: dict[str, list[float]] = {
            "rms_db": [],
            "spectral_centroid_hz": [],
            "spectral_flux": [],
        }
        first_time_s: float | None = None

        def work() -> None:
            nonlocal first_time_s
            for seq, i in enumerate(range(0, len(data), step)):
                out = session.process_chunk(seq=seq, data=data[i : i + step], capture_t_ns=0)
                f = out.analysis.features if out.analysis else None
                if f is not None:
                    first_time_s = f.first_time_s if first_time_s is None else first_time_s
                    features["rms_db"] += f.rms_db.tolist()
                    features["spectral_centroid_hz"] += f.centroid_hz.tolist()
                    features["spectral_flux"] += f.flux.tolist()
            session.finish()  # the refined tier's last window (REFINED_NOTES)

        reason = "error"
        try:
            await self._offloader.run(len(data) // frame_bytes, work)
            reason = "completed"
        except StreamError as e:
            return _error(e)
        finally:
            self._manager.close(session, reason=reason)
        out = session_json(session)
        out["duration_s"] = duration_s
        out["processing_ms"] = (time.perf_counter() - t0) * 1000
        if AnalysisKind.FEATURES in settings.analyses:
            out["features"] = {
                "first_time_s": first_time_s or 0.0,
                "hop_s": session.analyzer_config.hop_s,
            } | features
        return web.json_response(out)

    async def _post_offer(self, request: web.Request) -> web.Response:
        if self._gateway is None:
            return _error(StreamError(ErrorKind.UNAVAILABLE, "WebRTC is disabled on this node"))
        try:
            body = await self._body(request)
            sdp, sdp_type = body.get("sdp"), body.get("type", "offer")
            if not isinstance(sdp, str) or not sdp:
                raise invalid("sdp is required (the offer's SDP text)")
            opts = body.get("options") or {}
            if not isinstance(opts, dict):
                raise invalid("options must be an object")
            answer, atype, sid = await self._gateway.offer(
                sdp=sdp,
                sdp_type=str(sdp_type),
                session_id=str(opts.get("session_id", "")),
                analyses=_analyses(opts.get("analyses"), field="options.analyses"),
            )
        except StreamError as e:
            return _error(e)
        return web.json_response({"sdp": answer, "type": atype, "session_id": sid})
