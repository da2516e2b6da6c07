"""Collect a stream's events and write prediction files."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from .analysis_client import (
    ChunkResultEvent,
    FlowControlEvent,
    Note,
    Onset,
    StreamEvent,
    StreamStartedEvent,
    StreamSummaryEvent,
    StreamWarningEvent,
)
from .resume import ResumeStats

T = TypeVar("T")


def drop_retracted(
    items: list[T], retracted_s: Iterable[float], time_s: Callable[[T], float]
) -> None:
    """Remove from ``items``, in place, the latest item at each withdrawn onset time (the node
    sends a withdrawn onset's time exactly as it sent the onset)."""
    for t in retracted_s:
        for i in range(len(items) - 1, -1, -1):
            if time_s(items[i]) == t:
                del items[i]
                break


@dataclass
class StreamResult:
    started: StreamStartedEvent | None = None
    summary: StreamSummaryEvent | None = None
    onsets: list[Onset] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    warnings: list[StreamWarningEvent] = field(default_factory=list)
    #: flow-control advice received (the sender already acted on it)
    flow: list[FlowControlEvent] = field(default_factory=list)
    chunks: int = 0
    hops: int = 0
    result_seqs: list[int] = field(default_factory=list)
    resume: ResumeStats | None = None

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, ChunkResultEvent):
            self.chunks += 1
            self.result_seqs.append(event.seq)
            self.onsets.extend(event.onsets)
            drop_retracted(self.onsets, event.retracted_onsets_s, lambda o: o.time_s)
            self.notes.extend(event.notes)
            if event.latency_ms is not None:
                self.latencies_ms.append(event.latency_ms)
            self.server_ms.append(event.server_processing_ms)
            if event.features is not None:
                self.hops += len(event.features.rms_db)
        elif isinstance(event, StreamStartedEvent):
            self.started = event
        elif isinstance(event, StreamSummaryEvent):
            self.summary = event
            self.notes.extend(event.final_notes)
        elif isinstance(event, FlowControlEvent):
            self.flow.append(event)
        else:
            self.warnings.append(event)

    def latency_percentiles_ms(self) -> dict[str, float | None]:
        if not self.latencies_ms:
            return {"p50": None, "p95": None, "p99": None, "max": None}
        a = np.asarray(self.latencies_ms)
        p50, p95, p99 = np.percentile(a, [50, 95, 99])
        return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(a.max())}

    def onset_times_s(self) -> list[float]:
        return [o.time_s for o in self.onsets]

    def note_lists(self) -> dict[str, list[tuple[float, float, int]]]:
        """Final ``(onset_s, offset_s, midi_pitch)`` per tier, from the event stream.

        ``fast``: every fast ON, ended by its fast OFF (or by the next onset of the stream's
        last note + 0.1 s when no OFF came). ``refined``: fast notes the refined tier
        confirmed or corrected (with its pitch), plus its own ONs, ended by refined OFFs.
        """
        fast: dict[int, list[float]] = {}
        refined: dict[int, list[float]] = {}
        for n in self.notes:
            if n.tier == "FAST":
                if n.action == "ON":
                    fast[n.note_id] = [n.onset_s, 0.0, n.midi_pitch]
                elif n.action == "OFF" and n.note_id in fast:
                    fast[n.note_id][1] = n.offset_s
            elif n.action in ("ON", "CONFIRM", "CORRECT"):
                refined[n.note_id] = [n.onset_s, 0.0, n.midi_pitch]
            elif n.action == "OFF" and n.note_id in refined:
                refined[n.note_id][1] = n.offset_s
            elif n.action == "RETRACT":
                refined.pop(n.note_id, None)

        def rows(d: dict[int, list[float]]) -> list[tuple[float, float, int]]:
            out = [(on, off if off > on else on + 0.1, int(p)) for on, off, p in d.values()]
            return sorted(out)

        return {"fast": rows(fast), "refined": rows(refined)}

    def write(self, out_dir: Path, stem: str) -> list[Path]:
        """``<stem>.onsets.txt``; with notes also ``<stem>.notes.csv`` (refined tier, or the
        fast tier when the stream had no refined tier) and ``<stem>.fast.notes.csv``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{stem}.onsets.txt"
        path.write_text("".join(f"{t:.6f}\n" for t in self.onset_times_s()))
        paths = [path]
        if self.notes:
            lists = self.note_lists()
            has_refined = any(n.tier == "REFINED" for n in self.notes)
            for name, rows in (
                (f"{stem}.fast.notes.csv", lists["fast"]),
                (f"{stem}.notes.csv", lists["refined"] if has_refined else lists["fast"]),
            ):
                p = out_dir / name
                p.write_text("".join(f"{a:.6f},{b:.6f},{m}\n" for a, b, m in rows))
                paths.append(p)
        return paths

    def to_json(self, name: str) -> str:
        lat = self.latency_percentiles_ms()
        return json.dumps(
            {
                "file": name,
                "session_id": self.started.session_id if self.started else None,
                "chunks": self.chunks,
                "hops": self.hops,
                "onsets": len(self.onsets),
                "notes": sum(n.action == "ON" for n in self.notes),
                "warnings": len(self.warnings),
                "latency_ms": {k: (round(v, 3) if v is not None else None) for k, v in lat.items()},
                "server_ms_p50": round(float(np.median(self.server_ms)), 3)
                if self.server_ms
                else None,
                "result_seqs": self.seq_audit(),
                "resume": None
                if self.resume is None
                else {
                    "connects": self.resume.connects,
                    "resumes": self.resume.resumes,
                    "nodes": self.resume.nodes,
                    "outages_s": [round(x, 3) for x in self.resume.outages_s],
                    "resent_chunks": self.resume.resent_chunks,
                    "duplicates_dropped": self.resume.duplicates_dropped,
                    "buffer_dropped": self.resume.buffer_dropped,
                },
            }
        )

    def seq_audit(self) -> dict[str, int]:
        """Results received: count, seqs received twice, seqs missing below the highest."""
        seqs = self.result_seqs
        unique = set(seqs)
        top = max(seqs) + 1 if seqs else 0
        return {
            "count": len(seqs),
            "duplicates": len(seqs) - len(unique),
            "missing": top - len(unique),
        }
