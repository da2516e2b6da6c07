"""Basic Pitch (Spotify, Apache-2.0) run on overlapping windows of a stream, stitched exactly.

The ONNX model shipped in the ``basic-pitch`` wheel maps 43,844 samples at 22,050 Hz
(2 s minus one hop) to 172 frames at 256 samples per frame of per-key note, onset and
contour posteriors. The reference implementation steps windows by 36,164 samples
(141.27 frames) but keeps 142 frames of each, so its output drifts ~8 ms later per window.
Here the step is a whole number of frames (``step_frames``), each window contributes exactly
the frames it is centred on, and stream frame ``f`` covers samples ``[256 f, 256 (f + 1))``.

Only onnxruntime and numpy: the model is loaded from the installed wheel's files (no
TensorFlow, nothing downloaded).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
SAMPLE_RATE_HZ = 22_050
FRAME_SAMPLES = 256
WINDOW_SAMPLES = 43_844
WINDOW_FRAMES = 172
N_KEYS = 88


def model_path() -> Path:
    """Path of ``nmp.onnx`` inside the installed ``basic-pitch`` wheel."""
    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "basic-pitch is not installed (pip install --no-deps basic-pitch==0.4.0)"
        )
    path = (
        Path(next(iter(spec.submodule_search_locations)))
        / "saved_models"
        / "icassp_2022"
        / "nmp.onnx"
    )
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


@lru_cache(maxsize=2)
def _session(threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # one thread per run: sessions' windows run in parallel on the worker pool instead, which
    # measured faster than intra-op threads for batch-1 windows of this small convnet
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(
        str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def run_windows(windows: F32, *, threads: int = 1) -> tuple[F32, F32]:
    """Run the model.

    Parameters
    ----------
    windows : ndarray, shape (n, 43844), float32
        Audio at 22,050 Hz in ``[-1, 1]``.
    threads : int
        onnxruntime intra-op threads.

    Returns
    -------
    note, onset : ndarray, shape (n, 172, 88), float32
        Per-frame, per-key (MIDI 21..108) posteriors in ``[0, 1]``.
    """
    sess = _session(threads)
    note, onset = sess.run(
        ["StatefulPartitionedCall:1", "StatefulPartitionedCall:2"],
        {"serving_default_input_2:0": windows[:, :, None].astype(np.float32, copy=False)},
    )
    return np.asarray(note, dtype=np.float32), np.asarray(onset, dtype=np.float32)


@dataclass(frozen=True)
class Posteriors:
    """Stitched posteriors of consecutive stream frames.

    Attributes
    ----------
    first_frame : int
        Stream frame index of row 0 (frame ``f`` starts at ``f * 256 / 22050`` s).
    note, onset : ndarray, shape (n_frames, 88), float32
        Posteriors in ``[0, 1]``.
    """

    first_frame: int
    note: F32
    onset: F32


class WindowStitcher:
    """Cuts a stream into model windows and stitches their centres.

    Window ``w`` starts at stream sample ``256 * (w * step_frames - margin_frames)`` (zeros
    before the stream start) and contributes stream frames
    ``[w * step_frames, (w + 1) * step_frames)``, which sit ``margin_frames`` in from its start.
    The latency from a sample to its posterior is at most one window (~2 s).

    Parameters
    ----------
    step_frames : int
        Window step, frames; ``margin_frames = (171 - step_frames) // 2``.
    start_sample : int
        Stream sample (22.05 kHz) of the first sample pushed (``> 0`` when a resumed stream
        continues); the audio before it counts as silence.
    """

    def __init__(self, *, step_frames: int = 128, start_sample: int = 0) -> None:
        usable = WINDOW_SAMPLES // FRAME_SAMPLES  # 171 whole frames of audio per window
        if not 1 <= step_frames <= usable - 2:
            raise ValueError(f"step_frames must be in [1, {usable - 2}]")
        self.step_frames = step_frames
        self.margin_frames = (usable - step_frames) // 2
        w0 = max(start_sample, 0) // FRAME_SAMPLES // step_frames
        self._next_window = w0
        self._buf_start = self._window_start(w0)  # stream sample of _buf[0]
        self._buf: F32 = np.zeros(max(start_sample, 0) - self._buf_start, dtype=np.float32)
        #: stream frame of the first posterior this stitcher produces
        self.first_frame = w0 * step_frames

    def state(self) -> dict[str, npt.NDArray[np.generic]]:
        return {
            "buf": self._buf.copy(),
            "counts": np.array([self._buf_start, self._next_window], dtype=np.int64),
        }

    def restore(self, state: dict[str, npt.NDArray[np.generic]]) -> None:
        self._buf = np.asarray(state["buf"], dtype=np.float32).copy()
        self._buf_start, self._next_window = (int(v) for v in state["counts"])

    def _window_start(self, w: int) -> int:
        return (w * self.step_frames - self.margin_frames) * FRAME_SAMPLES

    def push(self, samples: F32, *, final: bool = False) -> list[tuple[int, F32]]:
        """Add samples at 22,050 Hz; return the windows now complete as ``(w, audio)``.

        With ``final=True`` the partial last windows are zero-padded and returned too.
        """
        self._buf = np.concatenate((self._buf, samples.astype(np.float32, copy=False)))
        end = self._buf_start + self._buf.shape[0]
        out: list[tuple[int, F32]] = []
        while True:
            w = self._next_window
            s = self._window_start(w)
            if s + WINDOW_SAMPLES > end and not (
                final and w * self.step_frames * FRAME_SAMPLES < end
            ):
                break
            seg = self._buf[s - self._buf_start : s - self._buf_start + WINDOW_SAMPLES]
            if seg.shape[0] < WINDOW_SAMPLES:
                seg = np.pad(seg, (0, WINDOW_SAMPLES - seg.shape[0]))
            out.append((w, seg.copy()))
            self._next_window += 1
        keep_from = self._window_start(self._next_window) - self._buf_start
        if keep_from > 0:
            self._buf = self._buf[keep_from:]
            self._buf_start += keep_from
        return out

    def stitch(self, w: int, note: F32, onset: F32) -> Posteriors:
        """The frames window ``w`` contributes, from its outputs ``(172, 88)``."""
        m = self.margin_frames
        k = self.step_frames
        return Posteriors(w * k, note[m : m + k].copy(), onset[m : m + k].copy())
