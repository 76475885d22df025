"""The parallel format's data: each table (or ctid range of a large table) read with
``COPY (SELECT ...) TO STDOUT`` on a worker connection that imported the backup's exported
snapshot, wrapped as a self-contained psql script (docs/format.md, "The parallel format")."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from psycopg import sql

from drtool.pg.conn import COPY_SETTINGS, Target, apply_copy_settings, connect, qualified, translate
from drtool.pg.dump.snapshot import TableRef

# COPY yields one message per row: rows are gathered into pieces of this size for the pipeline.
COPY_PIECE_BYTES = 1024 * 1024
# The data stream's last line (psql's end-of-data marker); the restore strips it.
COPY_TRAILER = b"\\.\n"


@dataclass(frozen=True)
class PartPlan:
    """One data object to write: a table, or a ctid range of it (pages ``[first, last)``,
    ``last`` None = to the end of the table, so rows in pages added since are included)."""

    table: TableRef
    columns: tuple[str, ...]
    index: int  # 1-based within the table
    count: int  # parts of this table
    first_page: int | None = None
    last_page: int | None = None
    pages: int = 0  # the table's size in pages, for scheduling (largest first)

    def where(self) -> str | None:
        """The ctid condition, as stored in the manifest (None: the whole table)."""
        if self.first_page is None:
            return None
        text = f"ctid >= '({self.first_page},0)'"
        if self.last_page is not None:
            text += f" AND ctid < '({self.last_page},0)'"
        return text


def plan_parts(
    conn: psycopg.Connection[tuple[object, ...]], tables: list[TableRef], split_pages: int
) -> list[PartPlan]:
    """Columns (neither dropped nor generated: COPY FROM refuses generated ones) and ctid
    ranges of ``tables``: a table of more than ``split_pages`` pages is cut into ranges of
    about that many. The size is the relation's current size (``pg_relation_size``; relpages
    may be stale): only a split hint, the last range is open-ended."""
    parts: list[PartPlan] = []
    for table in tables:
        rows = conn.execute(
            "select a.attname, pg_relation_size(c.oid) / current_setting('block_size')::int"
            "  from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            "  join pg_attribute a on a.attrelid = c.oid"
            " where n.nspname = %s and c.relname = %s and a.attnum > 0"
            "   and not a.attisdropped and a.attgenerated = ''"
            " order by a.attnum",
            (table.schema, table.name),
        ).fetchall()
        columns = tuple(str(r[0]) for r in rows)
        pages = int(rows[0][1]) if rows else 0  # type: ignore[call-overload]
        count = max(1, -(-pages // split_pages)) if split_pages > 0 else 1
        if count == 1:
            parts.append(PartPlan(table, columns, 1, 1, pages=pages))
            continue
        step = -(-pages // count)
        for i in range(count):
            first = i * step
            last = None if i == count - 1 else (i + 1) * step
            parts.append(PartPlan(table, columns, i + 1, count, first, last, pages))
    return parts


def _columns(columns: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c) for c in columns)


def copy_in_statement(schema: str, name: str, columns: list[str]) -> sql.Composed:
    """``COPY schema.table (columns) FROM stdin``, as the script header and the restore run it
    (a table without columns has rows too: then no column list, which would be a syntax error)."""
    if not columns:
        return sql.SQL("COPY {} FROM stdin").format(qualified(schema, name))
    return sql.SQL("COPY {} ({}) FROM stdin").format(
        qualified(schema, name), _columns(tuple(columns))
    )


def script_header(part: PartPlan, encoding: str) -> bytes:
    """The psql preamble of a data object: the session settings the rows were written under
    (the same ones pg_dump sets), then the COPY statement whose data follows."""
    settings = {"client_encoding": encoding, **COPY_SETTINGS, "row_security": "off"}
    lines = [
        sql.SQL("SET {} = {};\n").format(sql.Identifier(k), sql.Literal(v))
        for k, v in settings.items()
    ]
    copy = copy_in_statement(part.table.schema, part.table.name, list(part.columns))
    lines.append(sql.SQL("{};\n").format(copy))
    return sql.Composed(lines).as_string(None).encode("utf-8")


@dataclass
class CopyCount:
    """Rows a data stream carried, known once it is exhausted."""

    rows: int = 0


class SnapshotReader:
    """A worker's connection: REPEATABLE READ, READ ONLY, in the backup's exported snapshot,
    under the COPY session settings and the database's encoding."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]], target: Target) -> None:
        self.conn = conn
        self.target = target
        row = conn.execute("show server_encoding").fetchone()
        self.encoding = str(row[0]) if row else "UTF8"

    def rows(self, part: PartPlan, count: CopyCount) -> Iterator[bytes]:
        """The data object's plaintext: header, COPY text in pieces, trailer."""
        yield script_header(part, self.encoding)
        select = sql.SQL("SELECT {} FROM ONLY {}").format(
            _columns(part.columns), qualified(part.table.schema, part.table.name)
        )
        where = part.where()
        if where is not None:
            # Page numbers are integers we computed: safe to inline.
            select = sql.SQL("{} WHERE {}").format(select, sql.SQL(where))
        query = sql.SQL("COPY ({}) TO STDOUT").format(select)
        piece = bytearray()
        try:
            with self.conn.cursor() as cur, cur.copy(query) as copy:
                for data in copy:
                    piece += data
                    if len(piece) >= COPY_PIECE_BYTES:
                        count.rows += piece.count(b"\n")
                        yield bytes(piece)
                        piece.clear()
        except psycopg.Error as exc:
            raise translate(exc, self.target, f"copying {part.table.qualified}") from exc
        # Text COPY escapes newlines inside values: one line per row.
        count.rows += piece.count(b"\n")
        if piece:
            yield bytes(piece)
        yield COPY_TRAILER


@contextlib.contextmanager
def snapshot_reader(
    target: Target, snapshot_id: str, lock_wait: timedelta
) -> Iterator[SnapshotReader]:
    """A worker connection in the exported snapshot (which must still be open). Its COPY
    takes ACCESS SHARE locks the snapshot's transaction already holds; a lock request queued
    behind another session's ACCESS EXCLUSIVE request (itself waiting for the snapshot's
    transaction) would wait forever, so ``lock_wait`` bounds it (exit 1, naming the lock)."""
    with connect(target, "joining the backup snapshot", autocommit=False) as conn:
        try:
            lock_ms = int(lock_wait.total_seconds() * 1000)
            conn.execute(sql.SQL("set lock_timeout = {}").format(sql.Literal(f"{lock_ms}ms")))
            conn.execute("set statement_timeout = 0")
            conn.execute("set transaction isolation level repeatable read, read only")
            conn.execute(sql.SQL("set transaction snapshot {}").format(sql.Literal(snapshot_id)))
            apply_copy_settings(conn)
            # As pg_dump: a table whose policies would hide rows is an error, not a subset.
            conn.execute("set row_security = off")
            reader = SnapshotReader(conn, target)
            conn.execute(sql.SQL("set client_encoding = {}").format(sql.Literal(reader.encoding)))
        except psycopg.Error as exc:
            raise translate(exc, target, "joining the backup snapshot") from exc
        try:
            yield reader
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()


def lock_tables(conn: psycopg.Connection[tuple[object, ...]], tables: list[TableRef]) -> None:
    """ACCESS SHARE on every table copied, held by the snapshot's transaction until the end
    (as pg_dump does): a concurrent DROP or rewrite waits instead of emptying a COPY."""
    for start in range(0, len(tables), 500):
        batch = tables[start : start + 500]
        names = sql.SQL(", ").join(qualified(t.schema, t.name) for t in batch)
        conn.execute(sql.SQL("LOCK TABLE ONLY {} IN ACCESS SHARE MODE").format(names))


def locked_parts(
    conn: psycopg.Connection[tuple[object, ...]], tables: list[TableRef], split_pages: int
) -> list[PartPlan]:
    """In the snapshot's transaction: lock ``tables``, then plan their parts."""
    lock_tables(conn, tables)
    return plan_parts(conn, tables, split_pages)
