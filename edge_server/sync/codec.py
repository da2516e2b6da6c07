"""The batch format on the edge-to-cloud stream.

A batch is a list of records, JSON-encoded (``[[session_id, seq, kind, priority, node_id, t_ns,
payload], ...]``, payload being the record's own JSON text), compressed with zlib, and
optionally sealed with AES-256-GCM. The associated data binds the ciphertext to the batch's
identity (``forwarder|bseq|priority|count``), so a batch moved, renumbered or altered fails
authentication. ``kid`` (first 8 hex digits of SHA-256 of the key) lets the consumer tell a
wrong key from tampering.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..store.outbox import StreamRecord

CODEC_PLAIN = "zlib"
CODEC_SEALED = "zlib+aes256gcm"
MAX_BATCH_BYTES = 32 << 20  # decompressed; a bigger claim is refused (zip bomb)


class BatchError(ValueError):
    """A batch that cannot be read: tampered, wrong key, corrupt or not a batch."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def parse_key(text: str) -> bytes:
    """A 256-bit key written as 64 hex digits."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ValueError("cloud key: expected 64 hex digits (256 bits)") from None
    if len(key) != 32:
        raise ValueError(f"cloud key: {len(key) * 8} bits; AES-256-GCM needs 256")
    return key


def pack_records(records: list[StreamRecord]) -> bytes:
    """Compressed body (what the spool keeps)."""
    rows = [
        [r.session_id, r.seq, r.kind, r.priority, r.node_id, r.t_ns, r.payload.decode()]
        for r in records
    ]
    return zlib.compress(json.dumps(rows, separators=(",", ":")).encode(), 6)


def unpack_records(packed: bytes) -> list[StreamRecord]:
    try:
        d = zlib.decompressobj()
        raw = d.decompress(packed, MAX_BATCH_BYTES)
        if d.unconsumed_tail:
            raise BatchError(f"batch expands beyond {MAX_BATCH_BYTES} bytes")
        rows = json.loads(raw)
        return [
            StreamRecord(str(s), int(q), str(k), int(p), str(n), int(t), str(pl).encode())
            for s, q, k, p, n, t, pl in rows
        ]
    except BatchError:
        raise
    except (zlib.error, ValueError, TypeError, RecursionError) as e:
        raise BatchError(f"batch body is not a record list: {e}") from None


def aad(forwarder: str, bseq: int, priority: int, count: int) -> bytes:
    return f"{forwarder}|{bseq}|{priority}|{count}".encode()


def seal(packed: bytes, *, key: bytes | None, associated: bytes) -> tuple[str, bytes, bytes]:
    """Returns (codec, body, nonce)."""
    if key is None:
        return CODEC_PLAIN, packed, b""
    nonce = os.urandom(12)
    return CODEC_SEALED, AESGCM(key).encrypt(nonce, packed, associated), nonce


def open_sealed(
    codec: str, body: bytes, nonce: bytes, *, key: bytes | None, kid: str, associated: bytes
) -> bytes:
    """Inverse of :func:`seal`; raises :class:`BatchError` with the reason."""
    if codec == CODEC_PLAIN:
        if key is not None:
            raise BatchError("batch is not encrypted but this consumer requires encryption")
        return body
    if codec != CODEC_SEALED:
        raise BatchError(f"unknown codec {codec!r}; known: {CODEC_PLAIN}, {CODEC_SEALED}")
    if key is None:
        raise BatchError("batch is encrypted and this consumer has no key")
    if kid != key_id(key):
        raise BatchError(f"batch sealed with key {kid}; this consumer has {key_id(key)}")
    try:
        return AESGCM(key).decrypt(nonce, body, associated)
    except (InvalidTag, ValueError):
        raise BatchError("authentication failed: the batch was altered in transit") from None
