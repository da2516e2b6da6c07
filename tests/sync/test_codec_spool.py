"""Batch sealing (AES-256-GCM) and the bounded on-disk spool."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from edge_server.store.outbox import StreamRecord
from edge_server.sync.codec import (
    BatchError,
    aad,
    key_id,
    open_sealed,
    pack_records,
    parse_key,
    seal,
    unpack_records,
)
from edge_server.sync.spool import Spool

KEY = bytes(range(32))


def _records(n: int) -> list[StreamRecord]:
    return [StreamRecord("s", i, "events", 1, "n1", 5, b'{"i":%d}' % i) for i in range(n)]


def test_seal_open_round_trip_and_tampering() -> None:
    packed = pack_records(_records(50))
    assert len(packed) < 50 * 40  # compressed
    ad = aad("f", 3, 1, 50)
    codec, body, nonce = seal(packed, key=KEY, associated=ad)
    out = open_sealed(codec, body, nonce, key=KEY, kid=key_id(KEY), associated=ad)
    assert unpack_records(out) == _records(50)
    flipped = bytes([body[0] ^ 1]) + body[1:]
    with pytest.raises(BatchError, match="altered"):
        open_sealed(codec, flipped, nonce, key=KEY, kid=key_id(KEY), associated=ad)
    with pytest.raises(BatchError, match="altered"):  # renumbered batch
        open_sealed(codec, body, nonce, key=KEY, kid=key_id(KEY), associated=aad("f", 4, 1, 50))
    other = bytes(32)
    with pytest.raises(BatchError, match="sealed with key"):
        open_sealed(codec, body, nonce, key=other, kid=key_id(KEY), associated=ad)
    with pytest.raises(BatchError, match="no key"):
        open_sealed(codec, body, nonce, key=None, kid=key_id(KEY), associated=ad)
    with pytest.raises(BatchError, match="not a record list"):
        unpack_records(b"garbage")
    with pytest.raises(BatchError, match="not a record list"):  # nested too deep to parse
        unpack_records(zlib.compress(b"[" * 5000))
    with pytest.raises(ValueError, match="256"):
        parse_key("00" * 16)


def test_spool_priority_overflow_and_restart(tmp_path: Path) -> None:
    blob = b"x" * 1000
    sp = Spool(tmp_path, max_bytes=5500)
    feats = [sp.put(blob, priority=2, count=10) for _ in range(3)]
    events = [sp.put(blob, priority=1, count=10) for _ in range(2)]
    assert all(feats) and all(events)
    # full: a summary batch evicts the oldest features batch
    assert sp.put(blob, priority=0, count=1) is not None
    assert sp.dropped_records[2] == 10
    assert [i.priority for i in sp.queued()] == [0, 1, 1, 2, 2]
    # a features batch when only features are evictable: the oldest features batch goes
    assert sp.put(blob, priority=2, count=10) is not None
    assert sp.dropped_records[2] == 20
    first = sp.mark_sent(sp.queued()[0])
    assert first is not None and first.bseq == 1 and first.sent
    # restart: queued and sent batches and the batch counter survive
    sp2 = Spool(tmp_path, max_bytes=5500)
    assert [i.bseq for i in sp2.sent()] == [1]
    assert len(sp2.queued()) == 4 and sp2.next_bseq == 2
    assert sp2.confirm(1) == 1 and sp2.sent() == []
    # sent batches are never evicted; a new batch that cannot fit is dropped and counted
    for item in sp2.queued():
        sp2.mark_sent(item)
    assert sp2.put(b"y" * 2000, priority=0, count=3) is None
    assert sp2.dropped_records[0] == 3
