"""The backup snapshot: one REPEATABLE READ transaction that exports a snapshot for pg_dump
and counts every table's rows exactly in that same snapshot."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import psycopg
from psycopg import sql

from drtool.errors import DatabaseError, RefusedError
from drtool.pg.conn import Target, connect, qualified, server_version, translate

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")

T = TypeVar("T")


@dataclass(frozen=True)
class TableRef:
    schema: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class Snapshot:
    """An open snapshot: its id for ``pg_dump --snapshot``, its time and server facts."""

    snapshot_id: str
    taken_at: datetime
    server_major: int
    server_version: str
    database: str
    tables: list[TableRef] = field(default_factory=list)
    # Where the snapshot stands in the WAL, for replaying the change stream on top of it: the
    # WAL position read just before it was taken, and ``pg_current_snapshot()`` (None on a
    # standby, where neither is available).
    wal_lsn: str | None = None
    xid_snapshot: str | None = None
    _conn: psycopg.Connection[tuple[object, ...]] | None = None
    _target: Target | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def inspect(self, read: Callable[[psycopg.Connection[tuple[object, ...]]], T], doing: str) -> T:
        """``read(conn)`` on the snapshot's connection, in a savepoint: catalog reads see
        exactly what pg_dump dumps, and a failure (a DatabaseError naming ``doing``) leaves
        the snapshot usable."""
        assert self._conn is not None and self._target is not None
        with self._lock:
            try:
                with self._conn.transaction():
                    return read(self._conn)
            except psycopg.Error as exc:
                raise translate(exc, self._target, doing) from exc

    def count_rows(self, tables: list[TableRef]) -> dict[str, int]:
        """Exact ``count(*)`` of each table's own rows (``FROM ONLY``: an inheritance parent
        without its children's rows) inside the exported snapshot."""
        assert self._conn is not None and self._target is not None
        counts: dict[str, int] = {}
        with self._lock:
            try:
                for table in tables:
                    query = sql.SQL("select count(*) from only {}").format(
                        qualified(table.schema, table.name)
                    )
                    row = self._conn.execute(query).fetchone()
                    counts[table.qualified] = int(row[0]) if row else 0  # type: ignore[call-overload]
            except psycopg.Error as exc:
                raise translate(exc, self._target, "counting rows in the backup snapshot") from exc
        return counts


def _like_any(patterns: list[str]) -> list[str]:
    return [p.replace("*", "%") for p in patterns]


# The tables a backup holds (``pg_class c`` joined to ``pg_namespace n``): ordinary tables and
# partitions outside the system schemas, temporary and TOAST schemas, the excluded schemas
# (the second parameter: LIKE patterns) and extensions. Also what continuous archiving publishes.
USER_TABLES_WHERE = """
           c.relkind = 'r'
           and n.nspname <> all(%s::text[])
           and n.nspname not like 'pg\\_temp\\_%%' and n.nspname not like 'pg\\_toast%%'
           and not (n.nspname like any(%s::text[]))
           and not exists (select 1 from pg_depend d
                            where d.classid = 'pg_class'::regclass and d.objid = c.oid
                              and d.deptype = 'e')
"""


def user_tables_params(exclude_schemas: list[str]) -> tuple[list[str], list[str]]:
    """The parameters of ``USER_TABLES_WHERE``."""
    return list(SYSTEM_SCHEMAS), _like_any(exclude_schemas)


def list_tables(
    conn: psycopg.Connection[tuple[object, ...]], exclude_schemas: list[str]
) -> list[TableRef]:
    """Ordinary tables and partitions (partitioned parents hold no rows of their own)."""
    rows = conn.execute(
        "select n.nspname, c.relname"
        "  from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        f" where {USER_TABLES_WHERE} order by 1, 2",
        user_tables_params(exclude_schemas),
    ).fetchall()
    return [TableRef(str(r[0]), str(r[1])) for r in rows]


@contextlib.contextmanager
def open_snapshot(
    target: Target, exclude_schemas: list[str], lock_wait: timedelta
) -> Iterator[Snapshot]:
    """Hold a REPEATABLE READ, READ ONLY transaction open and export its snapshot."""
    with connect(target, "taking the backup snapshot", autocommit=False) as conn:
        try:
            wal_lsn = _wal_position(conn)
            lock_ms = int(lock_wait.total_seconds() * 1000)
            conn.execute(sql.SQL("set lock_timeout = {}").format(sql.Literal(f"{lock_ms}ms")))
            conn.execute("set statement_timeout = 0")
            conn.execute("set transaction isolation level repeatable read, read only")
            row = conn.execute(
                "select pg_export_snapshot(), now(), current_database(),"
                " pg_current_snapshot()::text"
            ).fetchone()
            assert row is not None
            major, version = server_version(conn)
            snap = Snapshot(
                snapshot_id=str(row[0]),
                taken_at=row[1],  # type: ignore[arg-type]
                server_major=major,
                server_version=version,
                database=str(row[2]),
                tables=list_tables(conn, exclude_schemas),
                wal_lsn=wal_lsn,
                xid_snapshot=str(row[3]) if wal_lsn is not None else None,
                _conn=conn,
                _target=target,
            )
        except psycopg.Error as exc:
            raise translate(exc, target, "taking the backup snapshot") from exc
        try:
            yield snap
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()


def _wal_position(conn: psycopg.Connection[tuple[object, ...]]) -> str | None:
    """The current WAL position, in a transaction of its own (ended before the snapshot's)."""
    try:
        row = conn.execute(
            "select case when pg_is_in_recovery() then null else pg_current_wal_lsn()::text end"
        ).fetchone()
        return str(row[0]) if row and row[0] else None
    except psycopg.Error:
        return None
    finally:
        conn.rollback()


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a job name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def advisory_lock(target: Target, name: str) -> Iterator[None]:
    """Hold a session advisory lock for ``name``; RefusedError (exit 5) if another run holds it."""
    with connect(target, f"taking the lock {name}") as conn:
        key = lock_key(name)
        row = conn.execute("select pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not row or not row[0]:
            raise RefusedError(
                f"another drtool run holds the lock {name!r} (PostgreSQL advisory lock {key})",
                hint="wait for the other run to finish; the lock is released when it exits",
            )
        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error, DatabaseError):
                conn.execute("select pg_advisory_unlock(%s)", (key,))
