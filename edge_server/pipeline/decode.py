"""Wire audio bytes -> validated mono float32 samples."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .errors import ErrorKind, StreamError, invalid
from .settings import Encoding

F32 = npt.NDArray[np.float32]


def decode_audio(data: bytes, *, encoding: Encoding, channels: int, max_bytes: int) -> F32:
    """Decode one chunk to mono float32 in ``[-1, 1]`` (channels averaged).

    Raises :class:`StreamError`: RESOURCE_EXHAUSTED over ``max_bytes``; INVALID_ARGUMENT for a
    byte count that is not whole frames, or non-finite FLOAT32 values.
    """
    n = len(data)
    if n > max_bytes:
        raise StreamError(
            ErrorKind.RESOURCE_EXHAUSTED,
            f"audio.data is {n} bytes; the limit for this stream is {max_bytes} bytes",
        )
    frame_bytes = encoding.sample_bytes * channels
    if n % frame_bytes:
        raise invalid(
            f"audio.data is {n} bytes, not a multiple of {frame_bytes} "
            f"({encoding.value} x {channels} channel{'s' if channels > 1 else ''})"
        )
    if encoding is Encoding.PCM16_LE:
        x = np.frombuffer(data, dtype="<i2").astype(np.float32)
        x *= np.float32(1.0 / 32768.0)
    else:
        x = np.frombuffer(data, dtype="<f4").astype(np.float32)
        finite = np.isfinite(x)
        if not finite.all():
            bad = int(np.argmin(finite))
            raise invalid(
                f"audio.data has a non-finite FLOAT32 value at sample {bad}; "
                "samples must be finite, nominally in [-1.0, 1.0]"
            )
        np.clip(x, -1.0, 1.0, out=x)
    if channels == 2:
        x = x.reshape(-1, 2).mean(axis=1, dtype=np.float32)
    return x
