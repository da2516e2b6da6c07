"""Idempotent record storage in PostgreSQL (psycopg 3, blocking; called from worker threads).

Same schema and behaviour as :class:`edge_server.sink.db.SqliteDb`; the page cursor is the
``id`` column (BIGSERIAL) instead of SQLite's rowid.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from ..store.outbox import StreamRecord
from .db import Query, gap_report, page_items, query_sql

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
  id BIGSERIAL UNIQUE,
  session_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  kind TEXT NOT NULL,
  priority INTEGER NOT NULL,
  node_id TEXT NOT NULL,
  t_ns BIGINT NOT NULL,
  payload TEXT NOT NULL,
  PRIMARY KEY (session_id, seq, kind)
);
CREATE INDEX IF NOT EXISTS records_node_t ON records (node_id, t_ns);
CREATE INDEX IF NOT EXISTS records_t ON records (t_ns);
CREATE TABLE IF NOT EXISTS batches (
  forwarder TEXT NOT NULL,
  bseq BIGINT NOT NULL,
  records INTEGER NOT NULL,
  PRIMARY KEY (forwarder, bseq)
);
"""


class PostgresDb:
    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._conn = psycopg.connect(url, autocommit=True)
        with self._conn.cursor() as c:
            c.execute(_SCHEMA)

    def store_batch(self, forwarder: str, bseq: int, records: list[StreamRecord]) -> int:
        rows = [
            (r.session_id, r.seq, r.kind, r.priority, r.node_id, r.t_ns, r.payload.decode())
            for r in records
        ]
        new = 0
        with self._lock, self._conn.transaction(), self._conn.cursor() as c:
            for row in rows:
                c.execute(
                    "INSERT INTO records (session_id, seq, kind, priority, node_id, t_ns, payload)"
                    " VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                    row,
                )
                new += max(0, c.rowcount)
            c.execute(
                "INSERT INTO batches VALUES (%s,%s,%s) ON CONFLICT DO NOTHING",
                (forwarder, bseq, len(rows)),
            )
        return new

    def _all(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._conn.cursor() as c:
            c.execute(sql, args)
            return list(c.fetchall())

    def stored_bseqs(self, forwarder: str, above: int) -> list[int]:
        rows = self._all(
            "SELECT bseq FROM batches WHERE forwarder=%s AND bseq>%s ORDER BY bseq",
            (forwarder, above),
        )
        return [int(r[0]) for r in rows]

    def forwarders(self) -> list[str]:
        return [str(r[0]) for r in self._all("SELECT DISTINCT forwarder FROM batches")]

    def query(self, q: Query) -> tuple[list[dict[str, Any]], int | None]:
        sql, args = query_sql(q, id_col="id", ph="%s")
        return page_items(self._all(sql, args), q.limit)

    def gaps(self, session_id: str) -> dict[str, Any]:
        seqs = [
            int(r[0])
            for r in self._all(
                "SELECT seq FROM records WHERE session_id=%s AND kind='events' ORDER BY seq",
                (session_id,),
            )
        ]
        summary = self._all(
            "SELECT payload FROM records WHERE session_id=%s AND kind='summary' "
            "ORDER BY seq DESC LIMIT 1",
            (session_id,),
        )
        return gap_report(session_id, seqs, summary[0][0] if summary else None)

    def all_records(self) -> list[tuple[str, int, str, bytes]]:
        rows = self._all("SELECT session_id, seq, kind, payload FROM records")
        return [(s, int(q), k, p.encode()) for s, q, k, p in rows]

    def count(self) -> int:
        return int(self._all("SELECT COUNT(*) FROM records")[0][0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
