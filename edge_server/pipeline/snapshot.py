"""Compact bytes for a session's analysis state (named numpy arrays plus counters).

Layout: 4-byte big-endian header length, a JSON header ``{"v": 1, "arrays": [[name, dtype,
shape, offset, nbytes], ...], "meta": {...}}``, then the arrays' raw little-endian bytes. No
pickling: a snapshot read from a shared store cannot execute code.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import numpy.typing as npt

Arrays = dict[str, npt.NDArray[np.generic]]
_ALLOWED = {"<f4", "<f8", "<i8"}
VERSION = 1


class SnapshotError(ValueError):
    """The bytes are not a snapshot this version can read."""


def encode_snapshot(*, arrays: Arrays, meta: dict[str, Any]) -> bytes:
    entries: list[list[Any]] = []
    blobs: list[bytes] = []
    offset = 0
    for name, arr in arrays.items():
        a = np.ascontiguousarray(arr)
        dt = a.dtype.newbyteorder("<").str
        if dt not in _ALLOWED:
            raise SnapshotError(f"array {name}: dtype {a.dtype} not allowed")
        raw = a.astype(dt, copy=False).tobytes()
        entries.append([name, dt, list(a.shape), offset, len(raw)])
        blobs.append(raw)
        offset += len(raw)
    header = json.dumps({"v": VERSION, "arrays": entries, "meta": meta}).encode()
    return struct.pack(">I", len(header)) + header + b"".join(blobs)


def decode_snapshot(blob: bytes) -> tuple[Arrays, dict[str, Any]]:
    try:
        (n,) = struct.unpack_from(">I", blob, 0)
        header = json.loads(blob[4 : 4 + n])
        if header.get("v") != VERSION:
            raise SnapshotError(f"snapshot version {header.get('v')} (this node reads {VERSION})")
        body = memoryview(blob)[4 + n :]
        arrays: Arrays = {}
        for name, dt, shape, offset, nbytes in header["arrays"]:
            if dt not in _ALLOWED or offset + nbytes > len(body):
                raise SnapshotError(f"array {name}: bad dtype or extent")
            a = np.frombuffer(body[offset : offset + nbytes], dtype=dt).reshape(shape)
            arrays[str(name)] = a.copy()
        meta = header["meta"]
        if not isinstance(meta, dict):
            raise SnapshotError("meta is not an object")
        return arrays, meta
    except (struct.error, ValueError, KeyError, TypeError) as e:
        if isinstance(e, SnapshotError):
            raise
        raise SnapshotError(f"unreadable snapshot: {e}") from None
