"""Reading one user's rows: a REPEATABLE READ, READ ONLY snapshot, the user looked up in the
users table, and each user-scoped table's rows streamed with ``COPY (SELECT ...) TO STDOUT``
as PostgreSQL COPY text (exact for every type) or as JSON objects for data subjects."""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from drtool.errors import UsageError
from drtool.pg.conn import (
    Target,
    apply_copy_settings,
    connect,
    qualified,
    server_version,
    translate,
)
from drtool.pg.userdata.tables import Conn, UserTable

# Rows are gathered into chunks of about this size before they go down the pipeline.
CHUNK_BYTES = 256 * 1024
END_OF_DATA = b"\\.\n"
# Chunks read ahead of the pipeline: bounded memory (4 x 256 KiB).
READ_AHEAD_CHUNKS = 4


class _Stopped(Exception):
    """The consumer went away: the reading thread ends its COPY."""


def quote_ident(name: str) -> str:
    """PostgreSQL's identifier quoting, for the text of the stored stream (SQL run by drtool
    uses psycopg's sql.Identifier)."""
    return '"' + name.replace('"', '""') + '"'


def copy_header(table: UserTable) -> bytes:
    """The line that opens a table's section: the pg_dump plain-format COPY statement."""
    cols = ", ".join(quote_ident(c) for c in table.copy_columns)
    return (
        f"COPY {quote_ident(table.schema)}.{quote_ident(table.name)} ({cols}) FROM stdin;\n"
    ).encode()


@dataclass
class TableStats:
    """Rows and SHA-256 of one table's COPY text rows (header and terminator excluded)."""

    rows: int = 0
    size: int = 0
    _digest: hashlib._Hash = field(default_factory=hashlib.sha256)

    def add(self, data: bytes) -> None:
        self._digest.update(data)
        self.size += len(data)
        # COPY text escapes newlines inside values: one row, one newline.
        self.rows += data.count(b"\n")

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


@dataclass
class UserSnapshot:
    """An open REPEATABLE READ, READ ONLY transaction on the source database."""

    conn: Conn
    target: Target
    taken_at: datetime
    server_version: str
    server_major: int
    database: str

    def find_user(self, users: UserTable, user_id: str) -> str | None:
        """The user's id as the database spells it, or None if there is no such user; a value
        the id column's type rejects (a malformed uuid) is a UsageError."""
        query = sql.SQL("select {col}::text from {t} where {col} = %s").format(
            col=sql.Identifier(users.user_column), t=qualified(users.schema, users.name)
        )
        try:
            with self.conn.transaction():  # a savepoint: a rejected value must not end the snapshot
                row = self.conn.execute(query, (user_id,)).fetchone()
        except psycopg.errors.DataError as exc:
            raise UsageError(
                f"{user_id!r} is not a valid user id for {users.qualified}.{users.user_column}",
                hint=f"user ids are the {users.user_column} values of {users.qualified}",
            ) from exc
        return str(row[0]) if row else None

    def copy_rows(
        self, table: UserTable, user_id: str, stats: TableStats | None = None
    ) -> Iterator[bytes]:
        """The user's rows of ``table`` as COPY text, in primary-key order, in chunks."""
        query = sql.SQL("copy (select {cols} from {t} as t where {mine}{order}) to stdout").format(
            cols=sql.SQL(", ").join(sql.Identifier(c) for c in table.copy_columns),
            t=qualified(table.schema, table.name),
            mine=table.user_is("t", user_id),
            order=_order_by(table),
        )
        yield from self._copy_out(query, table, stats)

    def json_rows(self, table: UserTable, user_id: str, omit: Sequence[str]) -> Iterator[bytes]:
        """The user's rows as JSON Lines (``to_jsonb(row)``: generated columns included,
        ``omit`` left out), in chunks. COPY text escapes a backslash as two, and jsonb's text
        never holds a raw tab, newline or carriage return: undoing ``\\\\`` is exact."""
        query = sql.SQL(
            "copy (select to_jsonb(t) - {omit}::text[] from {t} as t where {mine}{order}) to stdout"
        ).format(
            omit=sql.Literal(list(omit)),
            t=qualified(table.schema, table.name),
            mine=table.user_is("t", user_id),
            order=_order_by(table),
        )
        for chunk in self._copy_out(query, table, None):
            yield chunk.replace(b"\\\\", b"\\")

    def _copy_out(
        self, query: sql.Composed, table: UserTable, stats: TableStats | None
    ) -> Iterator[bytes]:
        """Rows read ahead on a thread (at most READ_AHEAD_CHUNKS chunks held) so that waiting
        for the server overlaps hashing, compression and encryption downstream; the thread
        is stopped and joined before this generator ends, however it ends."""
        ahead: queue.Queue[bytes | BaseException | None] = queue.Queue(READ_AHEAD_CHUNKS)
        stop = threading.Event()

        def put(item: bytes | BaseException | None) -> None:
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    ahead.put(item, timeout=0.1)
                    return
            raise _Stopped

        def produce() -> None:
            try:
                buf = bytearray()
                with self.conn.cursor() as cur, cur.copy(query) as copy:
                    for data in copy:
                        buf += data
                        if len(buf) >= CHUNK_BYTES:
                            put(bytes(buf))
                            buf.clear()
                if buf:
                    put(bytes(buf))
                put(None)
            except _Stopped:
                pass
            except BaseException as exc:
                with contextlib.suppress(_Stopped):
                    put(exc)

        thread = threading.Thread(target=produce, name="drtool-copy-out", daemon=True)
        thread.start()
        try:
            while (item := ahead.get()) is not None:
                if isinstance(item, psycopg.Error):
                    raise translate(item, self.target, f"reading {table.qualified}") from item
                if isinstance(item, BaseException):
                    raise item
                if stats is not None:
                    stats.add(item)
                yield item
        finally:
            stop.set()
            thread.join()

    def sections(
        self, tables: Sequence[UserTable], user_id: str, stats: dict[str, TableStats]
    ) -> Iterator[bytes]:
        """The stored form: per table, its COPY header, its rows and ``\\.``; ``stats`` is
        filled as the rows pass."""
        for table in tables:
            stats[table.qualified] = table_stats = TableStats()
            yield copy_header(table)
            yield from self.copy_rows(table, user_id, table_stats)
            yield END_OF_DATA


def _order_by(table: UserTable) -> sql.Composable:
    if not table.primary_key:
        return sql.SQL("")
    return sql.SQL(" order by ") + sql.SQL(", ").join(sql.Identifier(c) for c in table.primary_key)


@contextlib.contextmanager
def user_snapshot(target: Target, doing: str, lock_wait: timedelta) -> Iterator[UserSnapshot]:
    """One REPEATABLE READ, READ ONLY transaction: every table is read in the same snapshot."""
    with connect(target, doing, autocommit=False) as conn:
        try:
            lock_ms = int(lock_wait.total_seconds() * 1000)
            conn.execute(sql.SQL("set lock_timeout = {}").format(sql.Literal(f"{lock_ms}ms")))
            conn.execute("set statement_timeout = 0")
            # As pg_dump: a table whose row-level security would hide rows from this role is
            # an error, never a silently incomplete export.
            conn.execute("set row_security = off")
            conn.execute("set transaction isolation level repeatable read, read only")
            apply_copy_settings(conn)
            row = conn.execute("select now(), current_database()").fetchone()
            assert row is not None
            major, version = server_version(conn)
            snap = UserSnapshot(conn, target, row[0], version, major, str(row[1]))  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise translate(exc, target, doing) from exc
        try:
            yield snap
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
