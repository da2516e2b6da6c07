"""The node's HTTP API; every response is validated against docs/openapi.json."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import numpy as np
import pytest
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource

from edge_server.app import EdgeNode
from tests.signals import struck_string

SPEC = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())
# OpenAPI 3.1 schemas are JSON Schema 2020-12: resolve "#/components/..." inside the spec
_REG = Registry().with_resource(
    "spec",
    Resource.from_contents({**SPEC, "$schema": "https://json-schema.org/draft/2020-12/schema"}),
)


def check(instance: Any, schema: str) -> None:
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"spec#/components/schemas/{schema}"}, registry=_REG
    )
    validator.validate(instance)


def test_the_spec_is_valid_openapi() -> None:
    validate_spec(SPEC)


def _clip() -> tuple[str, np.ndarray]:
    x = struck_string(sample_rate_hz=44100, duration_s=1.5, notes=[(0.3, 60), (0.8, 64), (1.2, 67)])
    return base64.b64encode((x * 32767).astype("<i2").tobytes()).decode(), x


async def test_analyze_results_status_health(node: EdgeNode) -> None:
    base = f"http://127.0.0.1:{node.http_port}"
    b64, _ = _clip()
    async with aiohttp.ClientSession() as http:
        body = {
            "audio_b64": b64,
            "sample_rate_hz": 44100,
            "analyses": ["ONSETS", "FEATURES"],
            "session_id": "clip-1",
        }
        async with http.post(f"{base}/api/v1/audio/analyze", json=body) as r:
            assert r.status == 200
            out = await r.json()
        check(out, "AnalyzeResponse")
        np.testing.assert_allclose(
            [o["time_s"] for o in out["onsets"]], [0.3, 0.8, 1.2], atol=0.012
        )
        assert len(out["features"]["rms_db"]) == int(1.5 * 22050) // 128
        async with http.get(f"{base}/api/v1/results/clip-1") as r:
            assert r.status == 200
            res = await r.json()
        check(res, "Session")
        assert res["summary"]["onsets"] == 3 and not res["active"]
        async with http.get(f"{base}/api/v1/edge/status") as r:
            check(await r.json(), "Status")
        for path in ("/health", "/api/v1/health"):
            async with http.get(base + path) as r:
                check(await r.json(), "Health")
        async with http.get(f"{base}/") as r:
            assert r.status == 200 and "text/html" in r.headers["Content-Type"]


async def test_analyze_returns_notes_of_both_tiers(node: EdgeNode) -> None:
    # three struck strings (C4, E4, G4): the fast tier's ONs at their onsets; with
    # REFINED_NOTES the refined tier's decisions too (its last window decided at the end)
    b64, _ = _clip()
    base = f"http://127.0.0.1:{node.http_port}"
    got: dict[str, list[dict[str, Any]]] = {}
    async with aiohttp.ClientSession() as http:
        for kind in ("NOTES", "REFINED_NOTES"):
            body = {"audio_b64": b64, "sample_rate_hz": 44100, "analyses": ["ONSETS", kind]}
            async with http.post(f"{base}/api/v1/audio/analyze", json=body) as r:
                assert r.status == 200
                out = await r.json()
            check(out, "AnalyzeResponse")
            got[kind] = out["notes"]
            async with http.get(f"{base}/api/v1/results/{out['session_id']}") as r:
                res = await r.json()
            check(res, "Session")
            assert res["notes"] == out["notes"]
    fast_on = [n for n in got["NOTES"] if n["tier"] == "FAST" and n["action"] == "ON"]
    assert [n["midi_pitch"] for n in fast_on] == [60, 64, 67]
    np.testing.assert_allclose([n["onset_s"] for n in fast_on], [0.3, 0.8, 1.2], atol=0.012)
    assert all(n["tier"] == "FAST" for n in got["NOTES"])
    refined = [n for n in got["REFINED_NOTES"] if n["tier"] == "REFINED"]
    assert {n["midi_pitch"] for n in refined if n["action"] in ("CONFIRM", "CORRECT", "ON")} >= {
        60,
        64,
        67,
    }


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        (
            "/api/v1/audio/analyze",
            {"audio_b64": "!!!", "sample_rate_hz": 44100},
            400,
            "audio_b64 is not valid base64",
        ),
        (
            "/api/v1/audio/analyze",
            {"audio_b64": "AAAA", "sample_rate_hz": 96000},
            400,
            "config.sample_rate_hz=96000 is out of range",
        ),
        (
            "/api/v1/audio/analyze",
            {"audio_b64": "AAAA", "sample_rate_hz": 44100},
            400,
            "not a multiple of 2",
        ),
        (
            "/api/v1/audio/analyze",
            {"audio_b64": "", "sample_rate_hz": 44100},
            400,
            "audio_b64 is empty",
        ),
        (
            "/api/v1/audio/analyze",
            {"audio_b64": "AAAA", "sample_rate_hz": 44100, "encoding": "MP3"},
            400,
            "encoding='MP3'",
        ),
        (
            "/api/v1/audio/analyze",
            {"audio_b64": "AAAA", "sample_rate_hz": 44100, "analyses": ["MAGIC"]},
            400,
            "analyses=",
        ),
        ("/api/v1/webrtc/offer", {"type": "offer"}, 400, "sdp is required"),
        (
            "/api/v1/webrtc/offer",
            {"sdp": "v=0 garbage", "type": "offer"},
            400,
            "sdp: not a usable offer",
        ),
        ("/api/v1/webrtc/offer", {"sdp": "v=0", "type": "answer"}, 400, "expected 'offer'"),
        ("/api/v1/webrtc/offer", {"sdp": "v=0", "type": "offer"}, 400, "no audio media section"),
        (
            "/api/v1/webrtc/offer",
            {"sdp": "v=0", "type": "offer", "options": {"analyses": ["ONSETS", "REFINED_NOTES"]}},
            400,
            "REFINED_NOTES is not available over WebRTC",
        ),
        (
            "/api/v1/webrtc/offer",
            {"sdp": "v=0", "type": "offer", "options": {"analyses": "NOTES"}},
            400,
            "options.analyses must be a list of ONSETS, FEATURES, NOTES, REFINED_NOTES",
        ),
    ],
)
async def test_bad_requests(
    node: EdgeNode, path: str, body: dict[str, Any], status: int, needle: str
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{node.http_port}{path}", json=body) as r:
            assert r.status == status
            out = await r.json()
    check(out, "Error")
    assert needle in out["message"]
    assert node.manager.active_count == 0 and not node.gateway.peers


async def test_unknown_session_and_not_json(node: EdgeNode) -> None:
    base = f"http://127.0.0.1:{node.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/v1/results/nope") as r:
            assert r.status == 404
            check(await r.json(), "Error")
        async with http.get(f"{base}/api/v1/results/bad%20id") as r:
            assert r.status == 400
        async with http.post(f"{base}/api/v1/audio/analyze", data=b"{not json") as r:
            assert r.status == 400
            check(await r.json(), "Error")
        # nested too deep for the JSON parser (it raised RecursionError: a 500)
        async with http.post(f"{base}/api/v1/audio/analyze", data=b"[" * 100_000) as r:
            assert r.status == 400
            out = await r.json()
            check(out, "Error")
            assert "not JSON" in out["message"]
