"""pgoutput v1 messages from a real server decode to the expected sequence and values, and
encode back to the very bytes the server sent."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import TupleRow

from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.stream.pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Commit,
    Delete,
    Insert,
    LogicalMessage,
    Message,
    Relation,
    Truncate,
    Update,
    decode,
    encode,
)
from tests.fixtures.pg import require_initdb

LOGICAL_SETTINGS = {"wal_level": "logical", "max_wal_senders": "4", "max_replication_slots": "4"}
INT4_OID, TEXT_OID, JSONB_OID = 23, 25, 3802
BIG = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 1000) AS i)"


@pytest.fixture(scope="module")
def changes_db() -> Iterator[tuple[EphemeralCluster, str]]:
    """A wal_level=logical cluster with one slot that saw insert, update (key unchanged, then
    REPLICA IDENTITY FULL), delete, a logical message and TRUNCATE ... RESTART IDENTITY CASCADE."""
    require_initdb()
    with EphemeralCluster(settings=LOGICAL_SETTINGS) as cluster, cluster.connect() as conn:
        if cluster.major < 14:
            pytest.skip("pgoutput's messages and binary options need PostgreSQL 14")
        conn.execute(
            "CREATE TABLE t (id int PRIMARY KEY, body text NOT NULL, doc jsonb, note text)"
        )
        conn.execute("CREATE PUBLICATION pub FOR TABLE t")
        conn.execute("SELECT pg_create_logical_replication_slot('s', 'pgoutput')")
        conn.execute(f'INSERT INTO t VALUES (1, {BIG}, \'{{"a": [1, "é"]}}\', NULL)')
        conn.execute("INSERT INTO t VALUES (2, 'two', NULL, 'n')")
        conn.execute("UPDATE t SET note = 'changed' WHERE id = 1")
        conn.execute("ALTER TABLE t REPLICA IDENTITY FULL")
        conn.execute("UPDATE t SET body = 'deux' WHERE id = 2")
        conn.execute("DELETE FROM t WHERE id = 2")
        conn.execute("SELECT pg_logical_emit_message(true, 'drtool', 'hi'::bytea)")
        conn.execute("TRUNCATE t RESTART IDENTITY CASCADE")
        row = conn.execute(f"SELECT {BIG}").fetchone()
        assert row is not None
        yield cluster, row[0]


def _peek(conn: psycopg.Connection[TupleRow], binary: bool) -> list[tuple[int, Message, bytes]]:
    rows = conn.execute(
        "SELECT xid::text::bigint, data FROM pg_logical_slot_peek_binary_changes("
        "'s', NULL, NULL, 'proto_version', '1', 'publication_names', 'pub', "
        "'messages', 'true', 'binary', %s)",
        ["true" if binary else "false"],
    ).fetchall()
    return [(xid, decode(data), bytes(data)) for xid, data in rows]


def _transactions(changes: list[tuple[int, Message, bytes]]) -> list[list[Message]]:
    """The messages grouped per transaction, empty ones (the DDL's, before PG 15) left out."""
    txs: list[list[Message]] = []
    for _, msg, _ in changes:
        if isinstance(msg, Begin):
            txs.append([])
        txs[-1].append(msg)
    return [tx for tx in txs if len(tx) > 2]


def test_live_changes_decode_to_the_expected_messages(
    changes_db: tuple[EphemeralCluster, str],
) -> None:
    cluster, big = changes_db
    with cluster.connect() as conn:
        changes = _peek(conn, binary=False)
    for xid, msg, raw in changes:
        assert encode(msg) == raw
        if isinstance(msg, Begin):
            assert msg.xid == xid
    kinds = [[type(m).__name__[0] for m in tx] for tx in _transactions(changes)]
    assert kinds == [
        ["B", "R", "I", "C"],
        ["B", "I", "C"],
        ["B", "U", "C"],
        ["B", "R", "U", "C"],
        ["B", "D", "C"],
        ["B", "L", "C"],
        # TRUNCATE gives the table a new relfilenode: the invalidation resends the Relation.
        ["B", "R", "T", "C"],
    ]
    txs = _transactions(changes)
    begin, rel, ins, commit = txs[0]
    assert isinstance(begin, Begin) and isinstance(commit, Commit)
    assert begin.final_lsn == commit.commit_lsn and commit.end_lsn > commit.commit_lsn
    assert begin.commit_time == commit.commit_time and commit.flags == 0
    assert isinstance(rel, Relation)
    assert (rel.qualified, rel.replica_identity) == ("public.t", "d")
    assert [(c.name, c.type_oid, c.is_key) for c in rel.columns] == [
        ("id", INT4_OID, True),
        ("body", TEXT_OID, False),
        ("doc", JSONB_OID, False),
        ("note", TEXT_OID, False),
    ]
    assert ins == Insert(rel.oid, ("1", big, '{"a": [1, "é"]}', None))
    assert txs[1][1] == Insert(rel.oid, ("2", "two", None, "n"))
    # The key did not change, and the big TOASTed body was not sent again.
    assert txs[2][1] == Update(
        rel.oid, None, None, ("1", UNCHANGED_TOAST, '{"a": [1, "é"]}', "changed")
    )
    full = txs[3][1]
    assert isinstance(full, Relation) and full.replica_identity == "f"
    assert full.shape() != rel.shape() and full.oid == rel.oid
    assert txs[3][2] == Update(rel.oid, None, ("2", "two", None, "n"), ("2", "deux", None, "n"))
    assert txs[4][1] == Delete(rel.oid, None, ("2", "deux", None, "n"))
    message = txs[5][1]
    assert isinstance(message, LogicalMessage)
    assert (message.flags, message.prefix, message.content) == (1, "drtool", b"hi")
    assert txs[6][1] == full
    truncate = txs[6][2]
    assert truncate == Truncate(3, (rel.oid,))
    assert isinstance(truncate, Truncate) and truncate.cascade and truncate.restart_identity


def test_live_binary_values_round_trip(changes_db: tuple[EphemeralCluster, str]) -> None:
    cluster, _ = changes_db
    with cluster.connect() as conn:
        changes = _peek(conn, binary=True)
    for _, msg, raw in changes:
        assert encode(msg) == raw
    inserts = [m for _, m, _ in changes if isinstance(m, Insert)]
    assert inserts[1].new == (b"\x00\x00\x00\x02", b"two", None, b"n")
