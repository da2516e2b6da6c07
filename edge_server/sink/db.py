"""Idempotent record storage in SQLite (blocking; called from worker threads).

PostgreSQL: ``postgres_db.py``, same schema and behaviour.

A record's key is (session_id, seq, kind): storing a batch twice, or a record that two batches
carry, adds nothing. The ``batches`` table remembers which (forwarder, bseq) are stored, so the
watermark the forwarders wait for survives a consumer restart.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..store.outbox import StreamRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
  session_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  priority INTEGER NOT NULL,
  node_id TEXT NOT NULL,
  t_ns INTEGER NOT NULL,
  payload TEXT NOT NULL,
  PRIMARY KEY (session_id, seq, kind)
);
CREATE INDEX IF NOT EXISTS records_node_t ON records (node_id, t_ns);
CREATE INDEX IF NOT EXISTS records_t ON records (t_ns);
CREATE TABLE IF NOT EXISTS batches (
  forwarder TEXT NOT NULL,
  bseq INTEGER NOT NULL,
  records INTEGER NOT NULL,
  PRIMARY KEY (forwarder, bseq)
);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    session_id: str | None = None
    node_id: str | None = None
    kind: str | None = None
    since_t_ns: int | None = None
    until_t_ns: int | None = None
    #: rowid of the last item of the previous page
    after: int = 0
    limit: int = 100


class Db(Protocol):
    """What the consumer and the API need from a database (SQLite or PostgreSQL)."""

    def store_batch(self, forwarder: str, bseq: int, records: list[StreamRecord]) -> int: ...
    def stored_bseqs(self, forwarder: str, above: int) -> list[int]: ...
    def forwarders(self) -> list[str]: ...
    def query(self, q: Query) -> tuple[list[dict[str, Any]], int | None]: ...
    def gaps(self, session_id: str) -> dict[str, Any]: ...
    def all_records(self) -> list[tuple[str, int, str, bytes]]: ...
    def count(self) -> int: ...
    def close(self) -> None: ...


def query_sql(q: Query, *, id_col: str, ph: str) -> tuple[str, list[Any]]:
    """SELECT for one page of :class:`Query` (``ph``: the driver's placeholder), fetching one
    row more than the page to know whether another follows."""
    where = [f"{id_col} > {ph}"]
    args: list[Any] = [q.after]
    for col, val in (("session_id", q.session_id), ("node_id", q.node_id), ("kind", q.kind)):
        if val is not None:
            where.append(f"{col} = {ph}")
            args.append(val)
    if q.since_t_ns is not None:
        where.append(f"t_ns >= {ph}")
        args.append(q.since_t_ns)
    if q.until_t_ns is not None:
        where.append(f"t_ns < {ph}")
        args.append(q.until_t_ns)
    args.append(q.limit + 1)
    sql = (
        f"SELECT {id_col}, session_id, seq, kind, priority, node_id, t_ns, payload FROM records "
        f"WHERE {' AND '.join(where)} ORDER BY {id_col} LIMIT {ph}"
    )
    return sql, args


def page_items(rows: list[Any], limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """Rows of :func:`query_sql` as API items, and the cursor of the next page (or None)."""
    items = [
        {"session_id": s, "seq": int(seq), "kind": k, "priority": int(p), "node_id": n,
         "t_ns": int(t), "data": json.loads(pl)}
        for _, s, seq, k, p, n, t, pl in rows[:limit]
    ]  # fmt: skip
    return items, (int(rows[limit - 1][0]) if len(rows) > limit else None)


def gap_report(session_id: str, seqs: list[int], summary_payload: str | None) -> dict[str, Any]:
    """Missing chunk seqs of a session: every analysed chunk yields an ``events`` record,
    so a seq absent below the highest one (or below the summary's chunk count) is a gap.
    ``seqs`` sorted ascending."""
    top = seqs[-1] if seqs else -1
    if summary_payload is not None:
        top = max(top, int(json.loads(summary_payload).get("chunks_processed", 0)) - 1)
    ranges: list[list[int]] = []
    expect = 0
    for q in [*seqs, top + 1]:
        if q > expect:
            ranges.append([expect, q - 1])
        expect = max(expect, q + 1)
    return {
        "session_id": session_id,
        "events": len(seqs),
        "complete": summary_payload is not None,
        "missing": sum(b - a + 1 for a, b in ranges),
        "missing_ranges": ranges,
    }


def open_db(url: str) -> Db:
    """``sqlite:///path/to.db`` (or a bare path), or ``postgresql://user@host:port/db``."""
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres_db import PostgresDb  # psycopg is only needed for this backend

        return PostgresDb(url)
    if url.startswith("sqlite:///"):
        return SqliteDb(Path(url[len("sqlite:///") :]))
    if "://" in url:
        raise ValueError(f"--db {url!r}: use sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    return SqliteDb(Path(url))


class SqliteDb:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)

    def store_batch(self, forwarder: str, bseq: int, records: list[StreamRecord]) -> int:
        """Store a batch in one transaction; returns the records that were new."""
        rows = [
            (r.session_id, r.seq, r.kind, r.priority, r.node_id, r.t_ns, r.payload.decode())
            for r in records
        ]
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                before = c.total_changes
                c.executemany("INSERT OR IGNORE INTO records VALUES (?,?,?,?,?,?,?)", rows)
                new = c.total_changes - before
                c.execute(
                    "INSERT OR IGNORE INTO batches VALUES (?,?,?)", (forwarder, bseq, len(rows))
                )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        return new

    def stored_bseqs(self, forwarder: str, above: int) -> list[int]:
        with self._lock:
            cur = self._conn.execute(
                "SELECT bseq FROM batches WHERE forwarder=? AND bseq>? ORDER BY bseq",
                (forwarder, above),
            )
            return [int(r[0]) for r in cur]

    def forwarders(self) -> list[str]:
        with self._lock:
            return [str(r[0]) for r in self._conn.execute("SELECT DISTINCT forwarder FROM batches")]

    def query(self, q: Query) -> tuple[list[dict[str, Any]], int | None]:
        sql, args = query_sql(q, id_col="rowid", ph="?")
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return page_items(rows, q.limit)

    def gaps(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            seqs = [
                int(r[0])
                for r in self._conn.execute(
                    "SELECT seq FROM records WHERE session_id=? AND kind='events' ORDER BY seq",
                    (session_id,),
                )
            ]
            summary = self._conn.execute(
                "SELECT payload FROM records WHERE session_id=? AND kind='summary' "
                "ORDER BY seq DESC LIMIT 1",
                (session_id,),
            ).fetchone()
        return gap_report(session_id, seqs, summary[0] if summary else None)

    def all_records(self) -> list[tuple[str, int, str, bytes]]:
        """(session_id, seq, kind, payload) of every record (tests, audits)."""
        with self._lock:
            cur = self._conn.execute("SELECT session_id, seq, kind, payload FROM records")
            return [(s, int(q), k, p.encode()) for s, q, k, p in cur]

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
