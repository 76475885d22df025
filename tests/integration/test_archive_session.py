"""The archive session's one-COPY batch read and its delete by ctid, against real PostgreSQL:
what the COPY lines are taken apart into is what the server says of the same rows (keys as
``::text``, the versions digest, the time range, each row's own COPY text), and the guarded
delete commits only for the archived row versions, found by ctid or, where a ctid does not
name one row (partitioned or inherited tables), by key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from drtool.pg.archive.session import ArchiveSession, Limits, open_archive_session
from drtool.pg.conn import parse_target
from tests.fixtures.pg import TEST_PASSWORD

CUTOFF = datetime(2024, 1, 1, tzinfo=UTC)
LIMITS = Limits(lock_timeout=timedelta(seconds=2), statement_timeout=timedelta(seconds=30))

TABLES = """
create table plain (k text, n int, at timestamptz, body jsonb, primary key (k, n));
insert into plain select
    case i % 4 when 0 then 'tab' || E'\\t' || i when 1 then 'back\\slash' || i
               when 2 then 'new' || E'\\n' || 'line' || i else 'caf' || chr(233) || i end,
    i, timestamptz '2020-01-01' + i * interval '1 hour 0.25 seconds',
    jsonb_build_object('i', i, 's', repeat('x', i % 7))
  from generate_series(1, 300) i;
insert into plain values ('new', 1, timestamptz '2030-01-01', '{}');
create table parted (id bigint, at timestamptz, primary key (id, at)) partition by range (at);
create table parted_a partition of parted for values from ('2021-01-01') to ('2022-01-01');
create table parted_b partition of parted for values from ('2000-01-01') to ('2021-01-01');
insert into parted select i, case when i <= 50 then timestamptz '2021-06-01'
                                  else timestamptz '2019-06-01' end
  from generate_series(1, 100) i;
"""


@pytest.fixture
def db(pg_cluster: Any) -> Iterator[str]:
    name = f"sess_{uuid.uuid4().hex[:10]}"
    pg_cluster.create_database(name)
    with pg_cluster.connect(name) as conn:
        conn.execute(TABLES)
    try:
        yield name
    finally:
        pg_cluster.drop_database(name)


def session(pg_cluster: Any, db: str, table: str, time_column: str = "at") -> Any:
    return open_archive_session(
        parse_target(pg_cluster.dsn(db), TEST_PASSWORD),
        policy="p",
        table=table,
        time_column=time_column,
        cutoff=CUTOFF,
        where={},
        limits=LIMITS,
    )


def server_view(s: ArchiveSession, first: int, last: int) -> dict[str, Any]:
    """The server's own text of the rows ``first``..``last`` (1-based) of plain in key order."""
    rows = s.conn.execute(
        "select k::text, n::text, xmin::text, at from plain where at < %s order by k, n"
        " offset %s limit %s",
        (CUTOFF, first - 1, last - first + 1),
    ).fetchall()
    with (
        s.conn.cursor() as cur,
        cur.copy(
            "copy (select k, n, at, body from plain where at < %s order by k, n offset %s limit %s)"
            " to stdout",
            (CUTOFF, first - 1, last - first + 1),
        ) as copy,
    ):
        lines = b"".join(bytes(d) for d in copy).split(b"\n")[:-1]
    return {
        "keys": [(r[0], r[1]) for r in rows],
        "versions": [f"{r[0]}\t{r[1]}\t{r[2]}" for r in rows],
        "times": [r[3] for r in rows],
        "lines": lines,
    }


def test_a_batch_read_in_one_copy_is_what_the_server_says_of_its_rows(
    pg_cluster: Any, db: str
) -> None:
    from drtool.pg.archive.lines import rows_digest

    with session(pg_cluster, db, "public.plain") as s:
        assert s.info.single_heap
        first = s.read_batch(None, 120)
        assert first is not None
        second = s.read_batch(first.keys[-1], 1000)
        assert second is not None
        assert len(first.keys) == 120 and len(second.keys) == 300 - 120
        assert s.read_batch(second.keys[-1], 10) is None
        for batch, (lo, hi) in ((first, (1, 120)), (second, (121, 300))):
            want = server_view(s, lo, hi)
            assert batch.keys == want["keys"]
            assert batch.lines == want["lines"]
            assert batch.digest == rows_digest(want["versions"])
            assert batch.digest == s.present(batch.keys)[1]
            assert (batch.time_min, batch.time_max) == (min(want["times"]), max(want["times"]))
            assert len(batch.tids) == len(batch.keys)


def test_the_delete_by_ctid_commits_exactly_the_archived_versions(pg_cluster: Any, db: str) -> None:
    with session(pg_cluster, db, "public.plain") as s:
        batch = s.read_batch(None, 50)
        assert batch is not None
        # One row changes after the read (a new version at a new ctid): the delete is void.
        s.conn.execute("update plain set body = body where (k, n) = (%s, %s::int)", batch.keys[7])
        void = s.delete_batch(batch.keys, len(batch.keys), batch.digest, batch.tids)
        assert not void.committed and void.deleted == len(batch.keys) - 1
        assert s.present(batch.keys)[0] == len(batch.keys)  # rolled back: every row is there
        again = s.read_batch(None, 50)
        assert again is not None and again.keys == batch.keys and again.digest != batch.digest
        done = s.delete_batch(again.keys, len(again.keys), again.digest, again.tids)
        assert done.committed and done.deleted == 50
        assert s.present(again.keys)[0] == 0
        left = s.conn.execute("select count(*) from plain").fetchone()
        assert left is not None and left[0] == 301 - 50


def test_a_partitioned_table_is_deleted_by_key_not_by_ctid(pg_cluster: Any, db: str) -> None:
    with session(pg_cluster, db, "public.parted") as s:
        assert not s.info.single_heap  # ctids repeat across partitions
        # Keys 1-30 are at ctids (0,1)-(0,30) of parted_a; parted_b's rows 51-80, old too,
        # are at the same ctids of their own partition.
        batch = s.read_batch(None, 30)
        assert batch is not None and len(batch.keys) == 30
        outcome = s.delete_batch(batch.keys, len(batch.keys), batch.digest, batch.tids)
        assert outcome.committed and outcome.deleted == 30
        counts = s.conn.execute(
            "select (select count(*) from parted_a), (select count(*) from parted_b)"
        ).fetchone()
        assert counts == (20, 50)


def test_a_batch_read_that_waits_too_long_for_a_lock_gives_up_and_the_session_goes_on(
    pg_cluster: Any, db: str
) -> None:
    from drtool.errors import DatabaseError

    short = Limits(
        lock_timeout=timedelta(milliseconds=200), statement_timeout=LIMITS.statement_timeout
    )
    with (
        open_archive_session(
            parse_target(pg_cluster.dsn(db), TEST_PASSWORD),
            policy="p",
            table="public.plain",
            time_column="at",
            cutoff=CUTOFF,
            where={},
            limits=short,
        ) as s,
        pg_cluster.connect(db) as app,
    ):
        with app.transaction():
            app.execute("lock table plain in access exclusive mode")
            with pytest.raises(DatabaseError, match=r"archival\.lock_timeout"):
                s.read_batch(None, 10)
        batch = s.read_batch(None, 10)  # the lock is gone: the same session reads again
        assert batch is not None and len(batch.keys) == 10
