"""The refined note tier of one session: Basic Pitch windows on a worker pool, decisions at
our onsets, and reconciliation with the fast tier by note id.

Flow per chunk (called from :meth:`Session.process_chunk`, never blocking): the block's
22.05 kHz audio goes to the window stitcher; each complete 2 s window is submitted to the
shared :class:`RefinedPool`; finished windows are collected *in order* (a later window waits
for an earlier one) and their posteriors decided at the onsets the stream reported. Each
decision is reconciled with the fast notes of the same onset:

* same key in both: ``CONFIRM`` (fast note id);
* a fast key the refined tier does not hear, paired with the nearest unmatched refined key
  within an octave: ``CORRECT`` (fast note id, new pitch);
* a fast key with no partner: ``RETRACT``;
* a refined key with no fast partner: a new ``ON`` (tier REFINED, its own id).

Flow control: with ``max_pending - 1`` windows (~1.5 s of audio each) in flight,
:meth:`RefinedTier.backlog` names the one to wait for, and the gRPC transport awaits it before
reading the next chunk (a faster-than-real-time client is slowed by gRPC flow control).
Overflow policy, for a driver that does not wait: a window beyond ``max_pending`` is skipped:
no refined events for its span, the fast notes there stay unconfirmed (never retracted for
lack of a decision), and the count is kept in :attr:`RefinedTier.windows_skipped`.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from ..dsp.basicpitch import N_KEYS, Posteriors, WindowStitcher, run_windows
from ..dsp.notedecoder import NoteOn
from ..dsp.refined import FRAME_S, RefinedDecoder, RefinedNote, RefinedOff
from .events import NoteAction, NoteEvent, NoteTier

F32 = npt.NDArray[np.float32]
REFINED_ID_BASE = 1 << 40  # refined-only notes: ids that cannot collide with fast ones


class RefinedPool:
    """Worker threads shared by all sessions for Basic Pitch windows (onnxruntime releases
    the GIL, so ``workers`` threads use up to that many cores)."""

    def __init__(self, *, workers: int = 1, threads_per_run: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edge-refined")
        self.threads_per_run = threads_per_run

    def submit(self, window: F32) -> Future[tuple[F32, F32]]:
        return self._pool.submit(run_windows, window[None, :], threads=self.threads_per_run)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RefinedTier:
    """Per-session refined tier. Not thread-safe (driven by the session)."""

    def __init__(self, *, pool: RefinedPool, max_pending: int = 4, start_sample: int = 0) -> None:
        self._pool = pool
        self.max_pending = max_pending
        self._stitcher = WindowStitcher(start_sample=start_sample)
        self._decoder = RefinedDecoder(first_frame=self._stitcher.first_frame)
        self._pending: deque[tuple[int, Future[tuple[F32, F32]] | None]] = deque()
        self.windows_skipped = 0
        self._anchor_times: dict[int, float] = {}
        self._next_anchor = 0
        self._fast_by_anchor: dict[int, list[NoteOn]] = {}
        self._fast_orphans: list[NoteOn] = []
        self._ids: dict[tuple[int, int, float], int] = {}  # (anchor, pitch, onset) -> note id
        self._velocity: dict[int, float] = {}
        self._next_refined_id = REFINED_ID_BASE
        self._skipped_until_s = -1.0

    def add(
        self, samples: F32, onsets_s: list[float], fast_ons: tuple[NoteOn, ...]
    ) -> list[NoteEvent]:
        """Feed one block (its audio, onsets and fast note starts; the refined tier decides
        its own note ends); return the refined events decided so far (non-blocking)."""
        for t in onsets_s:
            a = self._next_anchor
            self._next_anchor += 1
            self._anchor_times[a] = t
            self._decoder.add_anchor(a, t)
        for n in fast_ons:
            anchor = self._anchor_of(n.onset_s)
            if anchor is None:
                self._fast_orphans.append(n)
            else:
                self._fast_by_anchor.setdefault(anchor, []).append(n)
            self._velocity[n.note_id] = n.velocity
        events = self._collect(block=False)
        for w, audio in self._stitcher.push(samples):
            if len(self._pending) >= self.max_pending:
                self.windows_skipped += 1
                self._pending.append((w, None))
            else:
                self._pending.append((w, self._pool.submit(audio)))
        return events

    def backlog(self) -> Future[tuple[F32, F32]] | None:
        """The oldest window still running when ``max_pending - 1`` or more are in flight: a
        transport awaits it before reading the stream's next chunk (backpressure: a client
        sending faster than real time is slowed instead of losing refined windows)."""
        if len(self._pending) < self.max_pending - 1:
            return None
        for _, fut in self._pending:
            if fut is not None and not fut.done():
                return fut
        return None

    def finish(self) -> list[NoteEvent]:
        """End of stream: run the last partial windows and wait for everything (blocking;
        call from a worker thread)."""
        for w, audio in self._stitcher.push(np.zeros(0, dtype=np.float32), final=True):
            self._pending.append((w, self._pool.submit(audio)))
        return self._collect(block=True)

    def _anchor_of(self, onset_s: float) -> int | None:
        for a in range(self._next_anchor - 1, max(self._next_anchor - 8, 0) - 1, -1):
            t = self._anchor_times.get(a)  # decided anchors are forgotten
            if t is not None and abs(t - onset_s) < 1e-3:
                return a
        return None

    def _collect(self, *, block: bool) -> list[NoteEvent]:
        events: list[NoteEvent] = []
        while self._pending:
            w, fut = self._pending[0]
            if fut is not None and not fut.done() and not block:
                break
            self._pending.popleft()
            k = self._stitcher.step_frames
            if fut is None:
                post = Posteriors(
                    w * k, np.zeros((k, N_KEYS), np.float32), np.zeros((k, N_KEYS), np.float32)
                )
                self._skipped_until_s = (w + 1) * k * FRAME_S
            else:
                note, onset = fut.result()
                post = self._stitcher.stitch(w, note[0], onset[0])
            final = block and not self._pending
            notes, offs = self._decoder.push(post, final=final)
            events += self._reconcile(notes, offs)
        return events

    def _reconcile(self, notes: list[RefinedNote], offs: list[RefinedOff]) -> list[NoteEvent]:
        out: list[NoteEvent] = []
        by_anchor: dict[int, list[RefinedNote]] = {}
        for n in notes:
            by_anchor.setdefault(n.anchor, []).append(n)
        for anchor, group in sorted(by_anchor.items(), key=lambda kv: kv[1][0].onset_s):
            if anchor < 0:
                for n in group:
                    out.append(self._orphan(n))
                continue
            fast = self._fast_by_anchor.pop(anchor, [])
            out += self._match(anchor, fast, group)
        # anchors decided with no refined key at all: their fast notes are retracted
        horizon = self._decoder.covered_s - self._decoder.params.lookahead_s
        for anchor in [a for a, t in self._anchor_times.items() if t <= horizon]:
            for f in self._fast_by_anchor.pop(anchor, []):
                if f.onset_s > self._skipped_until_s:
                    out.append(self._event(f.note_id, NoteAction.RETRACT, f.midi_pitch, f.onset_s))
            del self._anchor_times[anchor]
        keep = []
        for f in self._fast_orphans:
            if f.onset_s + 0.05 <= horizon:
                if f.onset_s > self._skipped_until_s:
                    out.append(self._event(f.note_id, NoteAction.RETRACT, f.midi_pitch, f.onset_s))
            else:
                keep.append(f)
        self._fast_orphans = keep
        for off in offs:
            nid = self._ids.pop((off.anchor, off.midi_pitch, off.onset_s), None)
            if nid is not None:
                out.append(
                    self._event(
                        nid, NoteAction.OFF, off.midi_pitch, off.onset_s, offset_s=off.offset_s
                    )
                )
        return out

    def _match(
        self, anchor: int, fast: list[NoteOn], refined: list[RefinedNote]
    ) -> list[NoteEvent]:
        out: list[NoteEvent] = []
        r_left = {n.midi_pitch: n for n in refined}
        f_left = []
        for f in fast:
            r = r_left.pop(f.midi_pitch, None)
            if r is None:
                f_left.append(f)
            else:
                out.append(self._keep(f.note_id, NoteAction.CONFIRM, r))
        for f in f_left:
            near = sorted(r_left, key=lambda p: abs(p - f.midi_pitch))
            if near and abs(near[0] - f.midi_pitch) <= 12:
                out.append(self._keep(f.note_id, NoteAction.CORRECT, r_left.pop(near[0])))
            elif f.onset_s > self._skipped_until_s:
                out.append(self._event(f.note_id, NoteAction.RETRACT, f.midi_pitch, f.onset_s))
        for r in r_left.values():
            out.append(self._new(r))
        return out

    def _orphan(self, n: RefinedNote) -> NoteEvent:
        for i, f in enumerate(self._fast_orphans):
            if f.midi_pitch == n.midi_pitch and abs(f.onset_s - n.onset_s) <= 0.05:
                del self._fast_orphans[i]
                return self._keep(f.note_id, NoteAction.CONFIRM, n)
        return self._new(n)

    def _keep(self, note_id: int, action: NoteAction, r: RefinedNote) -> NoteEvent:
        self._ids[(r.anchor, r.midi_pitch, r.onset_s)] = note_id
        return self._event(note_id, action, r.midi_pitch, r.onset_s, confidence=r.confidence)

    def _new(self, r: RefinedNote) -> NoteEvent:
        nid = self._next_refined_id
        self._next_refined_id += 1
        self._ids[(r.anchor, r.midi_pitch, r.onset_s)] = nid
        return self._event(nid, NoteAction.ON, r.midi_pitch, r.onset_s, confidence=r.confidence)

    def _event(
        self,
        nid: int,
        action: NoteAction,
        pitch: int,
        onset_s: float,
        *,
        offset_s: float = 0.0,
        confidence: float = 0.0,
    ) -> NoteEvent:
        return NoteEvent(
            note_id=nid,
            tier=NoteTier.REFINED,
            action=action,
            midi_pitch=pitch,
            onset_s=onset_s,
            offset_s=offset_s,
            velocity=self._velocity.pop(nid, 0.0),  # each fast note is decided once
            confidence=confidence,
        )
