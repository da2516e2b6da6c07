"""``edge-client``: stream audio to an edge node, evaluate a corpus, inspect a session."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc

from .analysis_client import (
    STREAM_ANALYSES,
    AnalysisClient,
    Audio,
    ChunkResultEvent,
    FlowControlEvent,
    Note,
    StreamEvent,
    StreamOptions,
    StreamStartedEvent,
    StreamSummaryEvent,
    StreamWarningEvent,
)
from .opus import MAX_BITRATE_BPS, MIN_BITRATE_BPS, encode_opus
from .results import StreamResult
from .resume import ResilientStream
from .router_client import RouteQuery, connect_routed
from .wav import read_wav


def _print_event(event: StreamEvent, *, quiet: bool) -> None:
    if quiet:
        return
    if isinstance(event, ChunkResultEvent):
        for o in event.onsets:
            lat = f"{event.latency_ms:6.2f} ms" if event.latency_ms is not None else "   -"
            print(
                f"onset  t={o.time_s:8.3f} s  strength={o.strength:6.2f}  "
                f"detected_at={o.detected_at_s:8.3f} s  result latency={lat}",
                flush=True,
            )
        for t in event.retracted_onsets_s:
            print(f"onset  t={t:8.3f} s  withdrawn (no key struck)", flush=True)
        _print_notes(event.notes, event.stream_time_s)
    elif isinstance(event, StreamSummaryEvent):
        _print_notes(event.final_notes, event.stream_time_s)
        print(
            f"summary: {event.chunks_processed} chunks, {event.onsets} onsets, "
            f"{event.notes} notes, {event.stream_time_s:.2f} s of audio, "
            f"dropped {event.chunks_dropped}, lost {event.chunks_lost}",
            flush=True,
        )
    elif isinstance(event, StreamStartedEvent):
        print(
            f"session {event.session_id} on node {event.node_id}: analysis "
            f"{event.analysis_sample_rate_hz} Hz, frame {event.frame_samples}, hop "
            f"{event.hop_samples}, algorithmic latency {event.algorithmic_latency_s * 1000:.1f} ms",
            flush=True,
        )
    elif isinstance(event, StreamWarningEvent):
        print(f"warning {event.code}: {event.message}", flush=True)
    elif isinstance(event, FlowControlEvent):
        what = f"coarsen to {event.suggested_chunk_frames} frames" if event.coarsen else "normal"
        print(f"flow control: {what} (queue {event.queue_delay_ms:.1f} ms)", flush=True)


_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(midi_pitch: int) -> str:
    return f"{_NAMES[midi_pitch % 12]}{midi_pitch // 12 - 1}"


def _print_notes(notes: Sequence[Note], stream_time_s: float) -> None:
    for n in notes:
        if n.action == "OFF":
            continue  # ends are not printed (they are in the prediction files)
        what = f"{n.tier.lower():7s} {n.action.lower():8s}"
        print(
            f"note   {what} {note_name(n.midi_pitch):4s} ({n.midi_pitch:3d}) onset "
            f"{n.onset_s:8.3f} s  id {n.note_id}  [at {stream_time_s:7.3f} s]",
            flush=True,
        )


async def stream_file(
    path: Path,
    *,
    target: str | None,
    options: StreamOptions,
    quiet: bool,
    router: str | None = None,
    query: RouteQuery | None = None,
    encoding: str = "pcm",
    opus_bitrate_bps: int = 64_000,
    give_up_after_s: float = 30.0,
) -> StreamResult:
    wav = await asyncio.to_thread(read_wav, path)
    audio: Audio = wav
    if encoding == "opus":
        audio = await asyncio.to_thread(encode_opus, wav, bitrate_bps=opus_bitrate_bps)
    result = StreamResult()
    if target is None and router is None:
        from .inprocess import analyze_inprocess  # needs the server package

        for event in analyze_inprocess(audio, options):  # Opus in-process: same decoder
            result.add(event)
            _print_event(event, quiet=quiet)
        return result
    if router is not None:
        # the router's choice first, then the nodes it ranked after it: a node lost mid-stream
        # is resumed on the next (with a session store the nodes share)
        node, rtt, rest = await connect_routed(router, query or RouteQuery())
        targets = [node.address] + [n.address for n in rest]
        if not quiet:
            print(
                f"router chose {node.node_id} ({node.address}, zone {node.zone}); rtt {rtt:.2f} "
                f"ms; then {', '.join(n.node_id for n in rest) or 'no other node'}"
            )
    else:
        assert target is not None
        targets = [t.strip() for t in target.split(",") if t.strip()]
    stream = ResilientStream(targets, audio, options, give_up_after_s=give_up_after_s)
    async for event in stream.events():
        result.add(event)
        _print_event(event, quiet=quiet)
    result.resume = stream.stats
    return result


def _options(args: argparse.Namespace) -> StreamOptions:
    return StreamOptions(
        chunk_frames=args.chunk_frames, realtime=args.realtime, analyses=args.analyses
    )


def _analyses(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """An argparse type: comma-separated analysis names (any case) among ``allowed``."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(a.strip().upper() for a in text.split(",") if a.strip())
        bad = [a for a in names if a not in allowed]
        if bad or not names:
            what = f"unknown {', '.join(map(repr, bad))}" if bad else "none given"
            raise argparse.ArgumentTypeError(f"{what}; allowed: {', '.join(allowed)}")
        return names

    return parse


def _int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: an integer in ``[lo, hi]``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be in [{lo}, {hi}], not {v}")
        return v

    return parse


async def _cmd_stream(args: argparse.Namespace) -> int:
    path = Path(args.file)
    query = RouteQuery(
        latitude_deg=args.lat,
        longitude_deg=args.lon,
        region=args.region,
        capabilities=tuple(a.lower() for a in _options(args).analyses),
    )
    result = await stream_file(
        path,
        target=args.target,
        options=_options(args),
        quiet=args.json,
        router=args.router,
        query=query,
        encoding=args.encoding,
        opus_bitrate_bps=args.opus_bitrate,
        give_up_after_s=args.give_up_after_s,
    )
    if args.out_dir:
        result.write(Path(args.out_dir), path.stem)
    if args.json:
        print(result.to_json(path.name))
    else:
        lat = result.latency_percentiles_ms()
        if lat["p50"] is not None:
            print(
                f"audio-to-result latency: p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms, "
                f"p99 {lat['p99']:.2f} ms over {len(result.latencies_ms)} chunks"
            )
    return 0


async def _cmd_eval(args: argparse.Namespace, files: list[Path]) -> int:
    out = Path(args.out_dir)
    for i, path in enumerate(files, 1):
        t0 = time.perf_counter()
        result = await stream_file(
            path,
            target=args.target,
            options=_options(args),
            quiet=True,
            encoding=args.encoding,
            opus_bitrate_bps=args.opus_bitrate,
        )
        result.write(out, path.stem)
        lat = result.latency_percentiles_ms()
        p99 = f", latency p99 {lat['p99']:.2f} ms" if lat["p99"] is not None else ""
        print(
            f"[{i}/{len(files)}] {path.name}: {len(result.onsets)} onsets in "
            f"{time.perf_counter() - t0:.1f} s{p99}",
            flush=True,
        )
    return 0


async def _cmd_webrtc(args: argparse.Namespace) -> int:
    from .webrtc_client import stream_webrtc  # aiortc is heavy: only load it here

    path = Path(args.file)
    wav = await asyncio.to_thread(read_wav, path)
    r = await stream_webrtc(args.url, wav, analyses=args.analyses)
    if args.out_dir:
        out = Path(args.out_dir)
        await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
        text = "".join(f"{t:.6f}\n" for t in r.onsets)
        await asyncio.to_thread((out / f"{path.stem}.onsets.txt").write_text, text)
        if r.notes:  # the fast tier, as `eval` writes it (a note still sounding: offset = end)
            end_s = len(wav.data) / wav.frame_bytes / wav.sample_rate_hz
            rows = sorted((on, off or max(end_s, on), p) for on, off, p in r.notes.values())
            notes_csv = "".join(f"{on:.6f},{off:.6f},{p}\n" for on, off, p in rows)
            await asyncio.to_thread((out / f"{path.stem}.fast.notes.csv").write_text, notes_csv)
    lat = sorted(r.latencies_ms)
    pct = {
        k: (round(lat[min(len(lat) - 1, int(q * len(lat)))], 3) if lat else None)
        for k, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
    }
    if args.json:
        print(
            json.dumps(
                {
                    "file": path.name,
                    "session_id": r.session_id,
                    "onsets": len(r.onsets),
                    "notes": len(r.notes),
                    "messages": r.messages,
                    "latency_ms": pct,
                    "summary": r.summary,
                }
            )
        )
    else:
        for t in r.onsets:
            print(f"onset  t={t:8.3f} s")
        for on, _, p in sorted(r.notes.values()):
            print(f"note   t={on:8.3f} s  midi {p}")
        print(
            f"session {r.session_id}: {len(r.onsets)} onsets, {len(r.notes)} notes; "
            f"DataChannel latency {pct}"
        )
    return 0


async def _cmd_session(args: argparse.Namespace) -> int:
    async with AnalysisClient(args.target) as client:
        r = await client.get_session(args.session_id)
    print(
        json.dumps(
            {
                "session_id": r.session_id,
                "active": r.active,
                "chunks_processed": r.summary.chunks_processed,
                "onsets": [round(o.time_s, 6) for o in r.onsets],
                "onsets_truncated": r.onsets_truncated,
            }
        )
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-client", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--realtime", action="store_true", help="pace at the audio's own rate")
        sp.add_argument(
            "--chunk-frames",
            type=_int_in(1, 10**7),
            default=1024,
            help="frames per chunk (a node takes at most 0.5 s of audio per chunk by default)",
        )
        sp.add_argument(
            "--analyses",
            type=_analyses(STREAM_ANALYSES),
            default="ONSETS,FEATURES",
            help=f"comma-separated, any of {', '.join(STREAM_ANALYSES)}",
        )
        sp.add_argument(
            "--encoding",
            choices=["pcm", "opus"],
            default="pcm",
            help="pcm: the WAV's samples; opus: 20 ms Opus packets at 48 kHz (opuslib)",
        )
        sp.add_argument(
            "--opus-bitrate",
            type=_int_in(MIN_BITRATE_BPS, MAX_BITRATE_BPS),
            default=64_000,
            help="bit/s with --encoding opus",
        )

    s = sub.add_parser("stream", help="stream one WAV and print results as they arrive")
    s.add_argument("file")
    where = s.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--target",
        help="HOST:PORT of an edge node, or a comma-separated list: on a lost connection the "
        "stream resumes on the next one (session resume)",
    )
    where.add_argument("--router", help="HOST:PORT of an edge-router: it picks the node")
    s.add_argument("--lat", type=float, default=None, help="your latitude (with --router)")
    s.add_argument("--lon", type=float, default=None, help="your longitude (with --router)")
    s.add_argument("--region", default="", help="your region hint (with --router)")
    s.add_argument("--out-dir", default=None)
    s.add_argument("--json", action="store_true", help="print one final JSON line only")
    s.add_argument(
        "--give-up-after-s",
        type=float,
        default=30.0,
        help="stop retrying after this long without a working stream",
    )
    common(s)

    e = sub.add_parser("eval", help="analyse every *.wav of a directory; write predictions")
    e.add_argument("corpus_dir")
    e.add_argument("--out-dir", required=True)
    e.add_argument("--target", default=None, help="HOST:PORT; in-process pipeline when omitted")
    common(e)
    e.set_defaults(analyses="ONSETS,REFINED_NOTES")

    w = sub.add_parser("webrtc", help="stream one WAV over WebRTC (aiortc), like a browser")
    w.add_argument("file")
    w.add_argument(
        "--url", required=True, help="the node's HTTP base URL, e.g. http://127.0.0.1:8080"
    )
    w.add_argument("--out-dir", default=None)
    w.add_argument("--json", action="store_true")
    w.add_argument(
        "--analyses",
        type=_analyses(("ONSETS", "FEATURES", "NOTES")),
        default="ONSETS,FEATURES,NOTES",
        help="comma-separated: ONSETS, FEATURES, NOTES (the fast tier; no REFINED_NOTES here)",
    )

    g = sub.add_parser("session", help="what a session has produced so far (GetSession)")
    g.add_argument("session_id")
    g.add_argument("--target", required=True)

    d = sub.add_parser("demo", help="start a server, stream the bundled excerpt, stop")
    d.add_argument("--file", default=None, help="WAV to stream instead of the bundled excerpt")
    d.add_argument("--fast", action="store_true", help="do not pace at real time")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "stream":
            return asyncio.run(_cmd_stream(args))
        if args.cmd == "eval":
            files = sorted(Path(args.corpus_dir).glob("*.wav"))
            if not files:
                print(f"edge-client: no *.wav in {args.corpus_dir}", file=sys.stderr)
                return 2
            return asyncio.run(_cmd_eval(args, files))
        if args.cmd == "webrtc":
            return asyncio.run(_cmd_webrtc(args))
        if args.cmd == "session":
            return asyncio.run(_cmd_session(args))
        if args.cmd == "demo":
            from .demo import run_demo

            return asyncio.run(run_demo(file=args.file, realtime=not args.fast))
    except grpc.aio.AioRpcError as e:
        print(f"edge-client: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    except (OSError, ValueError, ConnectionError) as e:
        print(f"edge-client: {e}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
