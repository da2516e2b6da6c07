"""Locust: each user is one musician streaming piano to an edge node at real-time pace.

    locust -f loadtests/locustfile.py --host 127.0.0.1:50051 --headless -u 50 -r 5 -t 2m

Each user opens a gRPC ``Analyze`` stream (``ONSETS, FEATURES, NOTES``), sends the bundled
excerpt (44.1 kHz PCM16 mono) in 1024-frame chunks paced at the audio's own rate, and reports
to locust's statistics:

* ``grpc-stream / audio-to-result``: per chunk, result receipt minus the instant the chunk's
  last sample was captured (its due time), ms; a node that falls behind shows up here;
* ``grpc-stream / open``: time to StreamStarted, and refusals (RESOURCE_EXHAUSTED) as
  failures;
* ``grpc-stream / stream``: a stream that failed mid-way, as a failure.

Environment: ``SEMINOTE_STREAM_S`` (seconds per stream, default 20),
``SEMINOTE_ANALYSES`` (default ``ONSETS,FEATURES,NOTES``). Locust runs on gevent: the
synchronous gRPC client is made cooperative with ``grpc.experimental.gevent``.
For capacity figures use ``make bench-capacity`` (leaner generator, side-by-side echo floor).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import grpc
import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()

from locust import User, constant, task  # noqa: E402 - after the gevent set-up of gRPC
from seminote.edge.v1 import analysis_pb2 as pb  # noqa: E402
from seminote.edge.v1 import analysis_pb2_grpc as pb_grpc  # noqa: E402

from clients.demo import EXCERPT  # noqa: E402
from clients.wav import read_wav  # noqa: E402

CHUNK_FRAMES = 1024
_AUDIO = read_wav(EXCERPT)
_STEP = CHUNK_FRAMES * _AUDIO.frame_bytes
_CHUNKS = [_AUDIO.data[i : i + _STEP] for i in range(0, len(_AUDIO.data) - _STEP + 1, _STEP)]
_PERIOD_S = CHUNK_FRAMES / _AUDIO.sample_rate_hz


class MusicianUser(User):
    """One real-time stream per task run, back to back."""

    wait_time = constant(0)

    def on_start(self) -> None:
        assert self.host, "pass --host HOST:PORT (the node's gRPC address, no scheme)"
        self._channel = grpc.insecure_channel(
            self.host, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        self._stub = pb_grpc.AudioAnalysisStub(self._channel)  # type: ignore[no-untyped-call]
        seconds = float(os.environ.get("SEMINOTE_STREAM_S", "20"))
        self._n_chunks = max(1, min(len(_CHUNKS), round(seconds / _PERIOD_S)))
        analyses = os.environ.get("SEMINOTE_ANALYSES", "ONSETS,FEATURES,NOTES").split(",")
        self._config = pb.AnalyzeRequest(
            config=pb.StreamConfig(
                sample_rate_hz=_AUDIO.sample_rate_hz,
                encoding=pb.AUDIO_ENCODING_PCM16_LE,
                channels=_AUDIO.channels,
                analyses=[pb.Analysis.Value(f"ANALYSIS_{a.strip()}") for a in analyses],
                client_name="locust",
            )
        )

    def on_stop(self) -> None:
        self._channel.close()

    def _fire(self, name: str, ms: float, size: int = 0, exc: Exception | None = None) -> None:
        self.environment.events.request.fire(
            request_type="grpc-stream",
            name=name,
            response_time=ms,
            response_length=size,
            exception=exc,
            context={},
        )

    @task
    def stream(self) -> None:
        t_open = time.monotonic()
        t0 = t_open
        due: dict[int, float] = {}

        def requests() -> Iterator[pb.AnalyzeRequest]:
            yield self._config
            for i in range(self._n_chunks):
                t = t0 + (i + 1) * _PERIOD_S
                delay = t - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                due[i] = t
                chunk = pb.AudioChunk(seq=i, data=_CHUNKS[i], capture_t_ns=int(t * 1e9))
                yield pb.AnalyzeRequest(audio=chunk)

        opened = False
        try:
            for msg in self._stub.Analyze(requests()):
                kind = msg.WhichOneof("kind")
                if kind == "result":
                    seq = msg.result.seq
                    ms = (time.monotonic() - due[seq]) * 1e3
                    self._fire("audio-to-result", ms, msg.ByteSize())
                elif kind == "started":
                    opened = True
                    self._fire("open", (time.monotonic() - t_open) * 1e3)
        except grpc.RpcError as e:
            self._fire("stream" if opened else "open", (time.monotonic() - t_open) * 1e3, exc=e)
