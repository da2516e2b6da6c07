"""A bounded on-disk spool of record batches (blocking file I/O: call from a worker thread).

Every batch the forwarder takes out of the edge outbox is written here (fsync'd) before the
outbox entries are acknowledged, and deleted only when the cloud confirms it is stored. File
names carry the state:

* ``q-<priority>-<created_ns>-<count>.b``: queued, not yet sent;
* ``s-<bseq>-<priority>-<created_ns>-<count>.b``: sent as batch ``bseq``, awaiting the cloud's
  confirmation (resent when the cloud reports a gap, or after a long silence).

The spool holds at most ``max_bytes``. Overflow policy: to make room, queued batches are
deleted lowest priority first (highest number), oldest first, and their records counted in
``dropped_records[priority]``; a new batch no more important than anything left to evict is
itself dropped and counted. Sent batches are never evicted (the forwarder's send window bounds
them). ``next_bseq`` survives restarts: it is the highest sent batch + 1, or the value written
to ``bseq`` (fsync'd) before confirmed batches are deleted.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SpoolItem:
    path: Path
    priority: int
    created_ns: int
    count: int
    size: int
    #: 0 while queued
    bseq: int = 0

    @property
    def sent(self) -> bool:
        return self.bseq > 0


def _parse(path: Path, size: int) -> SpoolItem | None:
    parts = path.stem.split("-")
    try:
        if parts[0] == "q" and len(parts) == 4:
            return SpoolItem(path, int(parts[1]), int(parts[2]), int(parts[3]), size)
        if parts[0] == "s" and len(parts) == 5:
            return SpoolItem(path, int(parts[2]), int(parts[3]), int(parts[4]), size, int(parts[1]))
    except ValueError:
        return None
    return None


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.dir = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        for tmp in directory.glob("*.tmp"):
            tmp.unlink()
        self._items: dict[Path, SpoolItem] = {}
        # the forwarder's intake and sender call in from different worker threads
        self._lock = threading.RLock()
        for p in directory.glob("*.b"):
            item = _parse(p, p.stat().st_size)
            if item is not None:
                self._items[p] = item
        self.dropped_records: Counter[int] = Counter()
        seq_file = directory / "bseq"
        self._seq_file = seq_file
        stored = int(seq_file.read_text()) if seq_file.exists() else 1
        self.next_bseq = max([stored, *(i.bseq + 1 for i in self._items.values())])

    @property
    def bytes_used(self) -> int:
        with self._lock:
            return sum(i.size for i in self._items.values())

    def queued(self) -> list[SpoolItem]:
        """Unsent batches, in sending order: most important first, then oldest."""
        with self._lock:
            items = list(self._items.values())
        return sorted(
            (i for i in items if not i.sent),
            key=lambda i: (i.priority, i.created_ns),
        )

    def sent(self) -> list[SpoolItem]:
        with self._lock:
            items = list(self._items.values())
        return sorted((i for i in items if i.sent), key=lambda i: i.bseq)

    def records_held(self) -> int:
        with self._lock:
            return sum(i.count for i in self._items.values())

    def put(self, packed: bytes, *, priority: int, count: int) -> SpoolItem | None:
        """Store a batch durably; ``None`` if the overflow policy dropped it."""
        with self._lock:
            return self._put(packed, priority=priority, count=count)

    def _put(self, packed: bytes, *, priority: int, count: int) -> SpoolItem | None:
        need = len(packed)
        victims = sorted(
            (i for i in self._items.values() if not i.sent and i.priority >= priority),
            key=lambda i: (-i.priority, i.created_ns),
        )
        used = sum(i.size for i in self._items.values())
        while used + need > self.max_bytes and victims:
            v = victims.pop(0)
            self._remove(v)
            self.dropped_records[v.priority] += v.count
            used -= v.size
        if used + need > self.max_bytes:
            self.dropped_records[priority] += count
            return None
        created = time.time_ns()
        path = self.dir / f"q-{priority}-{created:020d}-{count}.b"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(packed)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._fsync_dir()
        item = SpoolItem(path, priority, created, count, need)
        self._items[path] = item
        return item

    def read(self, item: SpoolItem) -> bytes:
        return item.path.read_bytes()

    def mark_sent(self, item: SpoolItem) -> SpoolItem | None:
        """Give a queued batch the next batch seq (before it is sent the first time);
        ``None`` if the overflow policy evicted it meanwhile."""
        with self._lock:
            if item.path not in self._items:
                return None
            return self._mark_sent(item)

    def _mark_sent(self, item: SpoolItem) -> SpoolItem:
        bseq = self.next_bseq
        self.next_bseq += 1
        path = self.dir / f"s-{bseq:012d}-{item.priority}-{item.created_ns:020d}-{item.count}.b"
        os.replace(item.path, path)
        self._fsync_dir()
        del self._items[item.path]
        new = SpoolItem(path, item.priority, item.created_ns, item.count, item.size, bseq)
        self._items[path] = new
        return new

    def confirm(self, upto_bseq: int) -> int:
        """Delete sent batches the cloud stored (``bseq <= upto_bseq``); returns how many."""
        with self._lock:
            done = [i for i in self._items.values() if i.sent and i.bseq <= upto_bseq]
            if done:  # the counter outlives the files that carried it
                tmp = self._seq_file.with_suffix(".tmp")
                with open(tmp, "w") as f:
                    f.write(str(self.next_bseq))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self._seq_file)
            for i in done:
                self._remove(i)
            return len(done)

    def _remove(self, item: SpoolItem) -> None:
        item.path.unlink(missing_ok=True)
        self._items.pop(item.path, None)

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
