"""The sink's databases: SQLite and a real PostgreSQL behave the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_server.sink.db import Db, Query, open_db
from edge_server.store.outbox import StreamRecord
from tests.postgres_server import PostgresServer


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "sqlite":
        d = open_db(f"sqlite:///{tmp_path / 'x.db'}")
        yield d
        d.close()
        return
    pg = PostgresServer()
    pg.start()
    try:
        d = open_db(pg.url)
        yield d
        d.close()
    finally:
        pg.stop()


def _recs(sid: str, seqs: range, kind: str = "events") -> list[StreamRecord]:
    return [StreamRecord(sid, q, kind, 1, "n1", 1000 + q, b'{"q":%d}' % q) for q in seqs]


def test_idempotent_store_query_gaps(db: Db) -> None:
    assert db.store_batch("f", 1, _recs("a", range(0, 10))) == 10
    assert db.store_batch("f", 1, _recs("a", range(0, 10))) == 0  # the same batch again
    assert db.store_batch("f", 3, _recs("a", range(5, 15))) == 5  # overlapping records
    assert db.store_batch("f", 4, _recs("b", range(0, 3), "features")) == 3
    assert db.count() == 18
    assert db.stored_bseqs("f", 0) == [1, 3, 4] and db.forwarders() == ["f"]
    items, nxt = db.query(Query(session_id="a", limit=6))
    assert [i["seq"] for i in items] == list(range(6)) and items[2]["data"] == {"q": 2}
    items2, nxt2 = db.query(Query(session_id="a", after=nxt or 0, limit=100))
    assert [i["seq"] for i in items2] == list(range(6, 15)) and nxt2 is None
    assert len(db.query(Query(kind="features"))[0]) == 3
    assert len(db.query(Query(since_t_ns=1010, until_t_ns=1012))[0]) == 2
    assert db.gaps("a")["missing"] == 0
    db.store_batch("f", 5, _recs("c", range(0, 3)) + _recs("c", range(6, 8)))
    summary = StreamRecord("c", 9, "summary", 0, "n1", 1, b'{"chunks_processed": 10}')
    db.store_batch("f", 6, [summary])
    g = db.gaps("c")
    assert g["missing_ranges"] == [[3, 5], [8, 9]] and g["missing"] == 5 and g["complete"]
