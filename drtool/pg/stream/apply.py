"""Replaying decoded transactions into a restored database (``restore --until``): each source
transaction as one target transaction, in commit order, skipping those the base backup's
snapshot already holds, stopping at the first commit after the recovery target."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from drtool.errors import DrtoolError, IntegrityError
from drtool.pg.stream.frames import Frame, format_lsn
from drtool.pg.stream.pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Commit,
    Delete,
    Insert,
    PgoutputError,
    Relation,
    Truncate,
    TupleData,
    Update,
    decode,
    pg_time_to_datetime,
)

INSERT_BATCH = 200  # rows per multi-row INSERT
MAX_PARAMS = 60000  # PostgreSQL's limit is 65535 parameters per statement
_HALF = 1 << 31
_WRAP = 1 << 32


class SchemaChanged(DrtoolError):
    """A relation's shape in the stream differs from the restored table's: the schema changed
    after the base backup, which logical decoding does not carry."""

    exit_code = 1


@dataclass(frozen=True)
class XidSnapshot:
    """``pg_current_snapshot()`` of a base backup (full 64-bit transaction ids)."""

    xmin: int
    xmax: int
    xip: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> XidSnapshot:
        try:
            xmin, xmax, xip = text.split(":")
            ids = frozenset(int(x) for x in xip.split(",") if x)
            snap = cls(int(xmin), int(xmax), ids)
        except ValueError:
            raise IntegrityError(f"not a transaction snapshot: {text[:80]!r}") from None
        if snap.xmin > snap.xmax or any(not snap.xmin <= x < snap.xmax for x in snap.xip):
            raise IntegrityError(f"not a transaction snapshot: {text[:80]!r}")
        return snap

    def full_xid(self, xid32: int) -> int:
        """The 64-bit id of a 32-bit ``xid`` near this snapshot (the nearest epoch)."""
        candidate = (self.xmax & ~(_WRAP - 1)) | xid32
        if candidate > self.xmax + _HALF:
            candidate -= _WRAP
        elif candidate < self.xmax - _HALF:
            candidate += _WRAP
        return candidate

    def sees(self, xid32: int) -> bool:
        """Whether a transaction that committed was visible to this snapshot (its effects are
        in the base backup)."""
        xid = self.full_xid(xid32)
        return xid < self.xmin or (xid < self.xmax and xid not in self.xip)


@dataclass
class _Table:
    relation: Relation
    target: sql.Composable
    key: list[int]  # positions of the columns an UPDATE/DELETE finds its row by
    by_text: bool  # REPLICA IDENTITY FULL without a usable key: match every column as text


@dataclass
class ReplayStats:
    applied: int = 0  # source transactions applied
    skipped: int = 0  # already in the base backup
    changes: int = 0
    last_commit_lsn: int | None = None
    last_commit_time: int | None = None  # pgoutput microseconds
    stopped: bool = False  # a commit after the recovery target was reached
    rows: dict[str, int] = field(default_factory=dict)  # net rows per table (+insert -delete)
    truncated: set[str] = field(default_factory=set)  # tables whose base count no longer holds


class Replayer:
    """Apply frames to ``conn`` (a non-autocommit connection to the restored database)."""

    def __init__(
        self, conn: psycopg.Connection[tuple[object, ...]], base: XidSnapshot, until: int | None
    ) -> None:
        self.conn = conn
        self.base = base
        self.until = until
        self.stats = ReplayStats()
        self._relations: dict[int, Relation] = {}
        self._checked: dict[tuple[object, ...], _Table] = {}
        self._skip = False
        self._open = False
        self._last_lsn = -1
        self._stmts: dict[tuple[object, ...], bytes] = {}
        self._pipeline: psycopg.Pipeline | None = None
        self._pipeline_stack = contextlib.ExitStack()
        self._pending_key: tuple[int, tuple[int, ...]] = (0, ())
        self._pending_rows: list[list[object]] = []
        self._updates: list[tuple[psycopg.Cursor[Any], str]] = []

    # -- frames ------------------------------------------------------------------------------

    def apply(self, frames: Iterable[Frame], where: str) -> None:
        """Apply one segment's frames; stop (``stats.stopped``) at the first commit after
        ``until``. Frames out of commit order are an IntegrityError."""
        for frame in frames:
            if self.stats.stopped:
                return
            try:
                msg = decode(frame.data)
            except PgoutputError as exc:
                raise IntegrityError(f"{where}: {exc}") from None
            try:
                self._message(msg, frame, where)
            except (IntegrityError, DrtoolError):
                self._rollback()
                raise
            except psycopg.Error as exc:
                self._rollback()
                raise DrtoolError(
                    f"{where}: replaying the transaction {frame.xid} failed: "
                    f"{str(exc).strip().splitlines()[0][:300]}",
                    hint="the restored database is as of the last transaction applied before it",
                ) from exc

    def finish(self) -> None:
        """A segment chain that ends inside a transaction is torn."""
        if self._open:
            self._rollback()
            raise IntegrityError("the change stream ends inside a transaction (a torn segment)")
        self.close()

    def _rollback(self) -> None:
        self._pending_rows = []
        self._updates = []
        self.close()
        with contextlib.suppress(psycopg.Error):
            self.conn.rollback()
        self._open = False

    def _message(self, msg: object, frame: Frame, where: str) -> None:
        if isinstance(msg, Begin):
            if self._open or self._skip:
                raise IntegrityError(f"{where}: a transaction begins inside another")
            if msg.final_lsn <= self._last_lsn:
                raise IntegrityError(
                    f"{where}: transactions out of commit order at {format_lsn(msg.final_lsn)}"
                )
            if self.until is not None and msg.commit_time > self.until:
                self.stats.stopped = True
                return
            self._skip = self.base.sees(msg.xid)
            self._open = not self._skip
            self._xact_lsn = msg.final_lsn
            return
        if isinstance(msg, Commit):
            if not (self._open or self._skip) or msg.commit_lsn != self._xact_lsn:
                raise IntegrityError(f"{where}: a commit without its transaction")
            self._last_lsn = msg.commit_lsn
            if self._skip:
                self.stats.skipped += 1
                self._skip = False
                return
            self._commit()
            self._open = False
            self.stats.applied += 1
            self.stats.last_commit_lsn = msg.commit_lsn
            self.stats.last_commit_time = msg.commit_time
            return
        if isinstance(msg, Relation):
            self._relation(msg)
            return
        if not isinstance(msg, Insert | Update | Delete | Truncate):
            return  # Origin, Type, logical messages: nothing to apply
        if self._skip:
            return
        if not self._open:
            raise IntegrityError(f"{where}: a change outside a transaction")
        self.stats.changes += 1
        if isinstance(msg, Insert):
            self._insert(msg)
        elif isinstance(msg, Update):
            self._update(msg)
        elif isinstance(msg, Delete):
            self._delete(msg)
        else:
            self._truncate(msg)

    # -- relations ---------------------------------------------------------------------------

    def _relation(self, rel: Relation) -> None:
        # Checked against the restored table when a change to it is applied: a transaction
        # the base backup already holds may carry an older shape.
        self._relations[rel.oid] = rel

    def _check(self, rel: Relation) -> _Table:
        """The restored table must have exactly the columns the stream carries (generated
        columns aside, which the stream never carries)."""
        row = self.conn.execute(
            """
            select c.oid,
                   array(select a.attname from pg_attribute a
                          where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                            and a.attgenerated = '' order by a.attnum),
                   array(select a.attname from pg_index i
                           join pg_attribute a on a.attrelid = i.indrelid
                                              and a.attnum = any(i.indkey)
                          where i.indrelid = c.oid and i.indisprimary)
              from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = %s and c.relname = %s
            """,
            (rel.namespace, rel.name),
        ).fetchone()
        names = [c.name for c in rel.columns]
        columns = [str(n) for n in row[1]] if row is not None else []  # type: ignore[attr-defined]
        primary = [str(n) for n in row[2]] if row is not None else []  # type: ignore[attr-defined]
        if row is None or sorted(columns) != sorted(names):
            found = "missing" if row is None else f"columns {', '.join(columns)}"
            raise SchemaChanged(
                f"{rel.qualified} changed after the base backup: the stream carries columns "
                f"{', '.join(names)}, the restored table has {found}",
                hint="logical decoding does not carry DDL: recover to a time before the change, "
                "or after the next base backup (`drtool list` shows them)",
            )
        pk = [names.index(n) for n in primary if n in names]
        flagged = [i for i, c in enumerate(rel.columns) if c.is_key]
        if rel.replica_identity == "f":
            key, by_text = (pk, False) if pk else (list(range(len(names))), True)
        else:
            key, by_text = flagged, False
        target = sql.Identifier(rel.namespace, rel.name)
        return _Table(rel, target, key, by_text)

    def _table(self, oid: int) -> _Table:
        rel = self._relations.get(oid)
        if rel is None:
            raise IntegrityError(f"a change to relation {oid} before its Relation message")
        shape = rel.shape()
        table = self._checked.get(shape)
        if table is None:
            table = self._checked[shape] = self._check(rel)
        return table

    # -- changes -----------------------------------------------------------------------------
    #
    # Statements go through one pipeline (psycopg pipeline mode): no round trip per change.
    # Consecutive inserts into one table with the same columns become one multi-row INSERT.
    # Each statement's text is rendered once per table and column set. An UPDATE must find
    # exactly its row: the counts are checked at the transaction's end, before its COMMIT.

    def _count(self, table: _Table, delta: int) -> None:
        name = table.relation.qualified
        self.stats.rows[name] = self.stats.rows.get(name, 0) + delta

    def _execute(self, query: bytes, args: list[object] | None = None) -> psycopg.Cursor[Any]:
        if self._pipeline is None:
            self._pipeline = self._pipeline_stack.enter_context(self.conn.pipeline())
        return self.conn.execute(query, args, prepare=True)

    def _render(self, key: tuple[object, ...], build: Callable[[], sql.Composable]) -> bytes:
        text = self._stmts.get(key)
        if text is None:
            text = self._stmts[key] = build().as_bytes(self.conn)
        return text

    def _flush(self) -> None:
        """Send the pending inserts as one statement."""
        if not self._pending_rows:
            return
        (oid, cols), rows = self._pending_key, self._pending_rows
        self._pending_rows = []
        table = self._table(oid)

        def build() -> sql.Composable:
            names = [sql.Identifier(table.relation.columns[i].name) for i in cols]
            row = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(cols)))
            return sql.SQL("insert into {} ({}) overriding system value values {}").format(
                table.target, sql.SQL(", ").join(names), sql.SQL(", ").join([row] * len(rows))
            )

        query = self._render(("i", oid, cols, len(rows)), build)
        self._execute(query, [value for row in rows for value in row])
        self._count(table, len(rows))

    def _insert(self, msg: Insert) -> None:
        cols = tuple(i for i, v in enumerate(msg.new) if v is not UNCHANGED_TOAST)
        key = (msg.relation_oid, cols)
        if self._pending_rows and key != self._pending_key:
            self._flush()
        self._pending_key = key
        self._pending_rows.append([msg.new[i] for i in cols])
        if len(self._pending_rows) >= max(1, min(INSERT_BATCH, MAX_PARAMS // max(len(cols), 1))):
            self._flush()

    def _where(self, table: _Table, cols: list[int]) -> sql.Composable:
        if table.by_text:
            conds = [
                sql.SQL("{}::text is not distinct from {}").format(
                    sql.Identifier(table.relation.columns[i].name), sql.Placeholder()
                )
                for i in cols
            ]
            return sql.SQL("ctid = (select ctid from {} where {} limit 1)").format(
                table.target, sql.SQL(" and ").join(conds)
            )
        return sql.SQL(" and ").join(
            sql.SQL("{} = {}").format(
                sql.Identifier(table.relation.columns[i].name), sql.Placeholder()
            )
            for i in cols
        )

    def _key_columns(self, table: _Table, old: TupleData) -> list[int]:
        cols = [i for i in table.key if old[i] is not UNCHANGED_TOAST]
        if not cols:
            raise IntegrityError(
                f"{table.relation.qualified}: an UPDATE or DELETE without its row's key "
                "(no replica identity)"
            )
        return cols

    def _update(self, msg: Update) -> None:
        self._flush()
        table = self._table(msg.relation_oid)
        old = msg.old if msg.old is not None else msg.key if msg.key is not None else msg.new
        keys = set(table.key)
        cols = tuple(
            i
            for i, v in enumerate(msg.new)
            if v is not UNCHANGED_TOAST and not (i in keys and old[i] == v)
        )
        if not cols:
            return
        where = tuple(self._key_columns(table, old))

        def build() -> sql.Composable:
            sets = sql.SQL(", ").join(
                sql.SQL("{} = {}").format(
                    sql.Identifier(table.relation.columns[i].name), sql.Placeholder()
                )
                for i in cols
            )
            return sql.SQL("update {} set {} where {}").format(
                table.target, sets, self._where(table, list(where))
            )

        query = self._render(("u", msg.relation_oid, cols, where, table.by_text), build)
        cur = self._execute(query, [*(msg.new[i] for i in cols), *(old[i] for i in where)])
        self._updates.append((cur, table.relation.qualified))

    def _delete(self, msg: Delete) -> None:
        self._flush()
        table = self._table(msg.relation_oid)
        old = msg.old if msg.old is not None else msg.key
        if old is None:
            raise IntegrityError(f"{table.relation.qualified}: a DELETE without its old row")
        where = tuple(self._key_columns(table, old))

        def build() -> sql.Composable:
            return sql.SQL("delete from {} where {}").format(
                table.target, self._where(table, list(where))
            )

        query = self._render(("d", msg.relation_oid, where, table.by_text), build)
        # 0 rows is possible: the target's own ON DELETE CASCADE may have removed it already.
        self._execute(query, [old[i] for i in where])
        self._count(table, -1)

    def _truncate(self, msg: Truncate) -> None:
        self._flush()
        tables = [self._table(oid) for oid in msg.relation_oids]
        stmt = sql.SQL("truncate only {}{}{}").format(
            sql.SQL(", ").join(t.target for t in tables),
            sql.SQL(" restart identity") if msg.restart_identity else sql.SQL(""),
            sql.SQL(" cascade") if msg.cascade else sql.SQL(""),
        )
        self._execute(stmt.as_bytes(self.conn))
        for t in tables:
            name = t.relation.qualified
            self.stats.truncated.add(name)
            self.stats.rows[name] = 0

    def _commit(self) -> None:
        """The transaction's pending inserts, its UPDATEs' row counts checked, COMMIT."""
        self._flush()
        if self._updates:
            assert self._pipeline is not None
            self._pipeline.sync()
            for cur, name in self._updates:
                if cur.rowcount != 1:
                    raise IntegrityError(
                        f"{name}: an UPDATE the stream carries found {cur.rowcount} rows in "
                        "the restored database instead of 1",
                        hint="the base backup and the stream disagree; use another base backup",
                    )
            self._updates = []
        self.conn.commit()

    def abandon(self) -> None:
        """Stop here: the open transaction (if any) rolled back, pipeline mode left."""
        self._rollback()

    def close(self) -> None:
        """Leave pipeline mode (after the last commit, or to roll back after an error)."""
        self._pipeline = None
        with contextlib.suppress(psycopg.Error):
            self._pipeline_stack.close()


@contextlib.contextmanager
def quiet_triggers(
    conn: psycopg.Connection[tuple[object, ...]], tables: list[str]
) -> Iterator[str]:
    """Replay must not fire the application's triggers (they already ran on the source, and
    their effects are in the stream): ``session_replication_role = replica`` where allowed,
    else the user triggers of the replayed tables disabled and re-enabled after."""
    try:
        conn.execute("set session_replication_role = replica")
        conn.commit()
        yield "session_replication_role"
        return
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
    rows = conn.execute(
        """
        select distinct n.nspname, c.relname
          from pg_trigger t join pg_class c on c.oid = t.tgrelid
          join pg_namespace n on n.oid = c.relnamespace
         where not t.tgisinternal and t.tgenabled <> 'D'
           and format('%%s.%%s', n.nspname, c.relname) = any(%s)
        """,
        (tables,),
    ).fetchall()
    names = [sql.Identifier(str(r[0]), str(r[1])) for r in rows]
    for name in names:
        conn.execute(sql.SQL("alter table {} disable trigger user").format(name))
    conn.commit()
    try:
        yield f"disabled on {len(names)} tables" if names else "none"
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.rollback()
            for name in names:
                conn.execute(sql.SQL("alter table {} enable trigger user").format(name))
            conn.commit()


def commit_datetime(value: int | None) -> str | None:
    return pg_time_to_datetime(value).isoformat() if value is not None else None
