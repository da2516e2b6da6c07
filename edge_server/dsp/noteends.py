"""When sounding notes end by level: the running-peak and ending-run rule, all notes at once.

A note's level (:func:`.notedecoder.key_levels` at its key) is checked hop by hop. Per
hop, in order: the peak follows the level up; the hop is *ending* when the level is
``off_drop`` below the peak or under ``off_floor``; after ``off_hops`` ending hops in a row
the note ends at that hop. :func:`level_ends` applies the rule to the next hops of any
number of notes (of any number of streams) in a fixed number of array operations, with no
loop over hops or notes; for a handful of notes (one stream alone, say) a plain loop over
them is cheaper than those ~25 array calls, and runs instead (the same rule, tested equal).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def level_ends(
    levels: F32,
    *,
    rows: I64,
    n_hops: I64,
    keys: I64,
    peak: F64,
    count: F64,
    off_drop: float,
    off_floor: float,
    off_hops: int,
) -> tuple[I64, F64, F64]:
    """Apply the note-end rule to the next hops of several notes.

    Parameters
    ----------
    levels : ndarray, shape (n_rows, 88), float32
        Key levels, one row per hop (log10 units, ``>= 0``).
    rows : ndarray, shape (n_notes,), int64
        Row of ``levels`` holding each note's first hop to check; its later hops follow.
    n_hops : ndarray, shape (n_notes,), int64
        Hops to check per note, ``>= 1``.
    keys : ndarray, shape (n_notes,), int64
        Each note's key, ``[0, 88)``.
    peak, count : ndarray, shape (n_notes,), float64
        Each note's peak level so far and its run of ending hops so far (``>= 0``).
    off_drop, off_floor : float
        The ending conditions (log10 units).
    off_hops : int
        Ending hops in a row that end a note, ``>= 1``.

    Returns
    -------
    ended_at : ndarray, shape (n_notes,), int64
        Index of the hop (``0 .. n_hops - 1``) at which each note ends, ``-1`` if it does not.
    peak, count : ndarray, shape (n_notes,), float64
        Peak and ending run after each note's last hop (meaningless where it ended).
    """
    n_max = int(n_hops.max()) if n_hops.shape[0] else 0
    if keys.shape[0] * n_max <= LOOP_MAX_NOTE_HOPS:
        return _level_ends_loop(
            levels, rows, n_hops, keys, peak, count, off_drop, off_floor, off_hops
        )
    nh = n_hops[:, None]
    hop = np.arange(n_max)[None, :]  # (1, H); hops past a note's n_hops are masked
    v = levels[rows[:, None] + np.minimum(hop, nh - 1), keys[:, None]].astype(np.float64)
    run_peak = np.maximum.accumulate(np.concatenate((peak[:, None], v), axis=1), axis=1)[:, 1:]
    ending = (v < run_peak - off_drop) | (v < off_floor)
    # the last hop that was not ending (-1: none in this block, so the stored run goes on)
    last_not = np.maximum.accumulate(np.where(ending, -1, hop), axis=1)
    run = np.where(last_not >= 0, hop - last_not, count[:, None] + hop + 1).astype(np.float64)
    done = (hop < nh) & (run >= off_hops)
    ended_at = np.where(done.any(axis=1), done.argmax(axis=1), -1).astype(np.int64)
    idx = np.arange(keys.shape[0])
    return ended_at, run_peak[idx, n_hops - 1], run[idx, n_hops - 1]


#: up to this many note-hops, :func:`level_ends` loops (about 0.3 us per note-hop, against
#: about 30 us for the array version's calls)
LOOP_MAX_NOTE_HOPS = 64


def _level_ends_loop(
    levels: F32,
    rows: I64,
    n_hops: I64,
    keys: I64,
    peak: F64,
    count: F64,
    off_drop: float,
    off_floor: float,
    off_hops: int,
) -> tuple[I64, F64, F64]:
    """:func:`level_ends` as a loop over notes and hops (Python floats: float64, as there)."""
    ended, peaks, counts = [], [], []
    for r, n, k, pk, c in zip(
        rows.tolist(), n_hops.tolist(), keys.tolist(), peak.tolist(), count.tolist(), strict=True
    ):
        end = -1
        for i, v in enumerate(levels[r : r + n, k].tolist()):
            if v > pk:
                pk = v
            c = c + 1.0 if (v < pk - off_drop or v < off_floor) else 0.0
            if c >= off_hops:
                end = i
                break
        ended.append(end)
        peaks.append(pk)
        counts.append(c)
    return (
        np.asarray(ended, dtype=np.int64),
        np.asarray(peaks, dtype=np.float64),
        np.asarray(counts, dtype=np.float64),
    )
