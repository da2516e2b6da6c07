"""Lean load generator: one process, many real-time gRPC streams, driven over stdin/stdout.

    python -m loadtests.loadgen --target HOST:PORT [--channels 8]

Each session streams the bundled piano excerpt (44.1 kHz PCM16 mono, 1024-frame chunks,
looped from a random offset) at real-time pace with ``ONSETS, FEATURES, NOTES`` and waits
for each chunk's result before sending the next one (the server answers every chunk in
order). Chunk ``i`` counts as captured when its last sample would have been, ``t0 + (i+1) *
23.2 ms``; its latency is result receipt minus that instant, so a server (or generator) that
falls behind shows up as growing latency and as *late* sends, never hidden.

Sessions are spread round-robin over ``--channels`` HTTP/2 connections (many streams per
connection cost less per message than one connection each); with several ``--target``
addresses (e.g. the workers' own ports) the connections alternate between them.

Commands, one JSON object per line on stdin; each gets one JSON line on stdout:

* ``{"cmd": "set", "n": N}``: run N sessions (start or stop some); replies when the new
  ones are streaming: ``{"active": k, "rejected": r, "reject_ms": [..]}``;
* ``{"cmd": "mark"}``: start a measurement window;
* ``{"cmd": "report"}``: the window's latencies (``lat_us``, one per result), the most a
  send was late (``max_late_ms``), streams that fell behind real time (a send over
  ``--behind-ms`` late), errors, flow-control messages seen, and this process's CPU seconds;
* ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field

import grpc
import numpy as np
from seminote.edge.v1 import analysis_pb2 as pb
from seminote.edge.v1 import analysis_pb2_grpc as pb_grpc

from clients.demo import EXCERPT
from clients.wav import read_wav

CHUNK_FRAMES = 1024


@dataclass
class Window:
    lat_us: list[int] = field(default_factory=list)
    max_late_s: float = 0.0
    behind: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    flow: int = 0


class Generator:
    def __init__(
        self,
        target: str,
        channels: int,
        behind_s: float,
        analyses: list[str],
        slow_down: float = 1.0,
        chunk_frames: int = CHUNK_FRAMES,
    ) -> None:
        targets = target.split(",")  # channels round-robin over them
        self._channels = [
            grpc.aio.insecure_channel(
                targets[i % len(targets)], options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for i in range(channels)
        ]
        self._stubs = [pb_grpc.AudioAnalysisStub(c) for c in self._channels]  # type: ignore[no-untyped-call]
        audio = read_wav(EXCERPT)
        x = np.frombuffer(audio.data, "<i2").reshape(-1, audio.channels)[:, 0]
        self.rate_hz = audio.sample_rate_hz
        step = chunk_frames
        self._chunks = [x[i : i + step].tobytes() for i in range(0, x.size - step + 1, step)]
        self._period_s = step / self.rate_hz * slow_down
        self._behind_s = behind_s
        self._config = pb.AnalyzeRequest(
            config=pb.StreamConfig(
                sample_rate_hz=self.rate_hz,
                encoding=pb.AUDIO_ENCODING_PCM16_LE,
                channels=1,
                analyses=[pb.Analysis.Value(f"ANALYSIS_{a}") for a in analyses],
                client_name="loadgen",
            )
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._stops: list[asyncio.Event] = []
        self.window = Window()
        self.rejected = 0
        self.reject_ms: list[float] = []
        self._next_id = 0

    async def set(self, n: int) -> dict[str, object]:
        self._tasks = [t for t in self._tasks if not t.done()]
        while len(self._tasks) > n:
            self._stops.pop().set()
            self._tasks.pop()
        self.rejected, self.reject_ms = 0, []
        started: list[asyncio.Future[None]] = []
        loop = asyncio.get_running_loop()
        while len(self._tasks) < n:
            fut: asyncio.Future[None] = loop.create_future()
            stop = asyncio.Event()
            sid = self._next_id
            self._next_id += 1
            self._tasks.append(asyncio.create_task(self._session(sid, stop, fut)))
            self._stops.append(stop)
            started.append(fut)
            if len(started) % 16 == 0:
                await asyncio.sleep(0.005)  # spread the starts (and their chunk phases)
        if started:
            await asyncio.wait(started, timeout=30)
        self._tasks = [t for t in self._tasks if not t.done()]
        return {"active": len(self._tasks), "rejected": self.rejected, "reject_ms": self.reject_ms}

    async def _session(self, sid: int, stop: asyncio.Event, started: asyncio.Future[None]) -> None:
        stub = self._stubs[sid % len(self._stubs)]
        loop = asyncio.get_running_loop()
        call = stub.Analyze()
        t_open = loop.time()
        try:
            await call.write(self._config)
            first = await call.read()
            if first is grpc.aio.EOF or first.WhichOneof("kind") != "started":
                raise RuntimeError(f"no StreamStarted: {first!r}")
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                self.rejected += 1
                self.reject_ms.append((loop.time() - t_open) * 1e3)
            else:
                self.window.errors.append(f"open: {e.code().name}: {e.details()}")
            started.set_result(None)
            return
        started.set_result(None)
        chunks = self._chunks
        k = random.randrange(len(chunks))
        t0 = loop.time()
        i = 0
        try:
            while not stop.is_set():
                due = t0 + (i + 1) * self._period_s
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                w = self.window
                late = loop.time() - due
                if late > w.max_late_s:
                    w.max_late_s = late
                if late > self._behind_s:
                    w.behind.add(sid)
                data = chunks[(k + i) % len(chunks)]
                req = pb.AnalyzeRequest(
                    audio=pb.AudioChunk(seq=i, data=data, capture_t_ns=int(due * 1e9))
                )
                await call.write(req)
                while True:
                    msg = await call.read()
                    if msg is grpc.aio.EOF:
                        raise RuntimeError("stream ended early")
                    kind = msg.WhichOneof("kind")
                    if kind == "result":
                        break
                    if kind == "flow":
                        self.window.flow += 1
                self.window.lat_us.append(int((loop.time() - due) * 1e6))
                i += 1
            await call.done_writing()
            while await call.read() is not grpc.aio.EOF:
                pass
        except (grpc.aio.AioRpcError, RuntimeError) as e:
            detail = f"{e.code().name}: {e.details()}" if isinstance(e, grpc.aio.AioRpcError) else e
            self.window.errors.append(f"stream: {detail}")

    def report(self) -> dict[str, object]:
        w = self.window
        t = time.process_time()
        return {
            "lat_us": w.lat_us,
            "max_late_ms": w.max_late_s * 1e3,
            "behind": len(w.behind),
            "errors": w.errors[:20],
            "n_errors": len(w.errors),
            "flow": w.flow,
            "cpu_s": t,
            "active": sum(not t.done() for t in self._tasks),
        }

    async def close(self) -> None:
        for s in self._stops:
            s.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for c in self._channels:
            await c.close()


async def _main(args: argparse.Namespace) -> None:
    gen = Generator(
        args.target,
        args.channels,
        args.behind_ms / 1e3,
        args.analyses.split(","),
        args.slow_down,
        args.chunk_frames,
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while line := await reader.readline():
        cmd = json.loads(line)
        out: dict[str, object]
        if cmd["cmd"] == "set":
            out = await gen.set(int(cmd["n"]))
        elif cmd["cmd"] == "mark":
            gen.window = Window()
            out = {"ok": True}
        elif cmd["cmd"] == "report":
            out = gen.report()
        else:
            break
        print(json.dumps(out), flush=True)
    await gen.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--target", required=True, help="HOST:PORT, or several comma-separated (channels alternate)"
    )
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--behind-ms", type=float, default=100.0)
    p.add_argument("--analyses", default="ONSETS,FEATURES,NOTES")
    p.add_argument("--chunk-frames", type=int, default=CHUNK_FRAMES)
    p.add_argument(
        "--slow-down", type=float, default=1.0, help="send chunks this many times slower"
    )
    args = p.parse_args()
    import uvloop

    uvloop.run(_main(args))


if __name__ == "__main__":
    main()
