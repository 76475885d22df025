"""One archival connection to the source database: count, read a batch (keys + COPY text),
the guarded delete (``DELETE ... RETURNING`` each row's digest, in a short transaction that is
rolled back unless exactly the archived row versions went), purge batches, VACUUM."""

from __future__ import annotations

import contextlib
import select
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.pq import ExecStatus
from psycopg.pq.abc import PGconn, PGresult

from drtool.errors import DatabaseError
from drtool.pg.archive.lines import rows_digest as rows_digest  # the digest's definition
from drtool.pg.archive.lines import split_lines
from drtool.pg.archive.table import (
    Conn,
    Key,
    TableInfo,
    array_literal,
    condition,
    describe_table,
)
from drtool.pg.conn import Target, apply_copy_settings, connect, translate

# Row versions: each row is identified as ``<key text>\t<xmin>``. Every UPDATE (even one that
# writes the same values) and every delete-and-reinsert makes a new row version with a new
# xmin, so a row whose version is the one read in the batch's snapshot is, byte for byte, the
# row whose COPY text was archived. Comparing versions costs the server nothing, where
# hashing each row's text form cost it as much as the COPY itself. A set of versions is
# digested as SHA-256 of the versions sorted (bytewise) and joined by newlines.
ROW_ALIAS = "_drtool_r"
ROW = sql.Identifier(ROW_ALIAS)
DIGEST_AGG = sql.SQL(
    "count(*), encode(sha256(convert_to("
    "coalesce(string_agg(h || E'\\n', '' ORDER BY h COLLATE \"C\"), ''), 'UTF8')), 'hex')"
)

TID_FILTER = sql.SQL("ctid = ANY(%s::tid[])")


def version(info: TableInfo, xmin: sql.Composable) -> sql.Composed:
    keys = [sql.SQL("{}::text").format(sql.Identifier(c)) for c in info.pk]
    return sql.SQL("concat_ws(E'\\t', {}, {}::text)").format(sql.SQL(", ").join(keys), xmin)


@dataclass(frozen=True)
class RowBatch:
    """A batch read in one snapshot: keys in primary-key order, each row's COPY text line
    (without its newline), the digest of the row versions, the time column's range, and
    where each row version was (its ctid), for the delete."""

    keys: list[Key]
    lines: list[bytes]
    digest: str
    time_min: datetime | None
    time_max: datetime | None
    tids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DeleteOutcome:
    committed: bool
    deleted: int  # rows the DELETE removed (rolled back unless committed)
    seconds: float


@dataclass(frozen=True)
class Limits:
    lock_timeout: timedelta
    statement_timeout: timedelta


def _ms(value: timedelta) -> str:
    return f"{max(1, int(value.total_seconds() * 1000))}ms"


def _wait_readable(pgconn: PGconn) -> None:
    select.select([pgconn.socket], [], [])  # releases the GIL, as psycopg's own wait does
    pgconn.consume_input()


def _next_result(pgconn: PGconn) -> PGresult | None:
    while pgconn.is_busy():
        _wait_readable(pgconn)
    return pgconn.get_result()


def _finished(conn: Conn, result: PGresult | None, status: ExecStatus) -> PGresult:
    """``result`` if it has ``status``, else psycopg's error for it; once the statement's
    results are all read, so the connection is ready for the next one either way."""
    if result is None or result.status != status:
        while _next_result(conn.pgconn) is not None:
            pass
        if result is not None and result.status == ExecStatus.FATAL_ERROR:
            raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
        raise psycopg.OperationalError("unexpected result of the batch's COPY")
    return result


def copy_lines(conn: Conn, query: sql.Composable) -> list[bytes]:
    """Run a ``COPY (...) TO STDOUT`` and return its text lines without newlines. COPY text
    escapes newlines inside values, so one line is one row.

    Read from libpq directly, every row libpq has buffered in one loop: psycopg's ``Copy``
    costs a few microseconds of Python per row, holding the GIL that the batch workers need,
    and a batch has thousands of rows. Errors are psycopg's, as its ``Copy`` raises them."""
    pgconn = conn.pgconn
    chunks: list[bytes] = []
    with conn.lock:  # psycopg's: nothing else is sent on this connection meanwhile
        pgconn.send_query(query.as_bytes(conn))
        _finished(conn, _next_result(pgconn), ExecStatus.COPY_OUT)
        while True:
            nbytes, data = pgconn.get_copy_data(1)
            if nbytes > 0:
                chunks.append(bytes(data))
            elif nbytes == 0:
                _wait_readable(pgconn)
            else:
                break
        _finished(conn, _next_result(pgconn), ExecStatus.COMMAND_OK)
        while _next_result(pgconn) is not None:
            pass
    body = b"".join(chunks)
    return body.split(b"\n")[:-1] if body else []


class ArchiveSession:
    """The policy's table on one autocommit connection with deterministic COPY settings."""

    def __init__(
        self,
        conn: Conn,
        target: Target,
        info: TableInfo,
        time_column: str,
        cond: sql.Composed,
        limits: Limits,
        policy: str,
    ) -> None:
        self.conn = conn
        self.target = target
        self.info = info
        self.time_column = time_column
        self.cond = cond
        self.limits = limits
        self.policy = policy

    def _timeouts(self) -> None:
        self.conn.execute(
            sql.SQL("SET LOCAL lock_timeout = {}").format(
                sql.Literal(_ms(self.limits.lock_timeout))
            )
        )
        self.conn.execute(
            sql.SQL("SET LOCAL statement_timeout = {}").format(
                sql.Literal(_ms(self.limits.statement_timeout))
            )
        )

    def _failed(self, exc: psycopg.Error, doing: str) -> DatabaseError:
        table = self.info.qualified
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return DatabaseError(
                f"archive policy {self.policy}: could not get the lock on {table} (or one of its "
                f"rows) within archival.lock_timeout ({_ms(self.limits.lock_timeout)}) while "
                f"{doing}; gave up rather than make the application wait, nothing was deleted "
                "by this batch",
                hint="rerun later; a rerun reconciles the batch (runbooks/archive.md)",
            )
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return DatabaseError(
                f"archive policy {self.policy}: {doing} on {table} exceeded "
                f"archival.statement_timeout ({_ms(self.limits.statement_timeout)}); "
                "nothing was deleted by this batch",
                hint="use a smaller --batch-size or raise archival.statement_timeout",
            )
        return translate(exc, self.target, f"archive policy {self.policy}: {doing}")

    def count(self) -> int:
        query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(self.info.ident(), self.cond)
        try:
            row = self.conn.execute(query).fetchone()
        except psycopg.Error as exc:
            raise self._failed(exc, "counting matching rows") from exc
        return int(row[0]) if row else 0  # type: ignore[call-overload]

    def read_batch(self, after: Key | None, limit: int) -> RowBatch | None:
        """The next ``limit`` matching rows after ``after`` in primary-key order, in one
        ``COPY`` (one snapshot, one scan): each line is the row's xmin, ctid, time and key
        columns, then the row itself, which is kept as its COPY text line."""
        info = self.info
        copy = sql.SQL(
            "COPY (SELECT {r}.xmin, {r}.ctid, {t}::timestamptz AS _drtool_t, {keys}, {cols}"
            " FROM {table} AS {r} WHERE {cond} AND {cursor} ORDER BY {pk} LIMIT {n}) TO STDOUT"
        ).format(
            r=ROW,
            t=sql.Identifier(self.time_column),
            keys=info.pk_text(),
            cols=info.column_list(),
            table=info.ident(),
            cond=self.cond,
            cursor=info.after(after),
            pk=info.pk_list(ROW_ALIAS),
            n=sql.Literal(limit),
        )
        try:
            with self.conn.transaction():
                self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                self._timeouts()
                raw = copy_lines(self.conn, copy)
        except psycopg.Error as exc:
            raise self._failed(exc, "reading a batch") from exc
        if not raw:
            return None
        keys, lines, tids, digest, (time_min, time_max) = split_lines(
            raw, len(info.pk), self.conn.info.encoding, f"archive policy {self.policy}"
        )
        return RowBatch(keys, lines, digest, time_min, time_max, tids)

    def present(self, keys: Sequence[Key]) -> tuple[int, str]:
        """(count, versions digest) of the rows with these keys that exist now."""
        filt, arrays = self.info.key_filter(keys)
        query = sql.SQL("SELECT {} FROM (SELECT {} AS h FROM {} WHERE {}) AS d").format(
            DIGEST_AGG, version(self.info, sql.SQL("xmin")), self.info.ident(), filt
        )
        try:
            row = self.conn.execute(query, arrays).fetchone()
        except psycopg.Error as exc:
            raise self._failed(exc, "looking for an archived batch's rows") from exc
        assert row is not None
        return int(row[0]), str(row[1])  # type: ignore[call-overload]

    def delete_batch(
        self, keys: Sequence[Key], rows: int, digest: str, tids: Sequence[str] = ()
    ) -> DeleteOutcome:
        """Delete the batch's rows that still match the policy, in one short transaction with
        lock and statement timeouts; commit only if exactly ``rows`` rows with this versions
        ``digest`` were deleted (the archived row versions, unchanged), else roll back.

        With the ctids the rows were read at, the rows are found by ctid (a TID scan, no
        index lookups), on a table whose rows all live in its own heap (a ctid names one
        row). A row updated since, or a slot reused by another row, changes the versions
        digest, so the guard is the same either way."""
        filt: sql.Composable
        if tids and self.info.single_heap:
            filt, arrays = TID_FILTER, [array_literal(tids)]
        else:
            filt, arrays = self.info.key_filter(keys)
        query = sql.SQL(
            "WITH d AS (DELETE FROM {} WHERE {} AND {} RETURNING {} AS h) SELECT {} FROM d"
        ).format(
            self.info.ident(), filt, self.cond, version(self.info, sql.SQL("xmin")), DIGEST_AGG
        )
        started = time.monotonic()
        committed = False
        deleted = 0
        try:
            with self.conn.transaction():
                self._timeouts()
                row = self.conn.execute(query, arrays).fetchone()
                assert row is not None
                deleted = int(row[0])  # type: ignore[call-overload]
                if deleted != rows or str(row[1]) != digest:
                    raise psycopg.Rollback()
                committed = True
        except psycopg.Error as exc:
            raise self._failed(exc, "deleting an archived batch") from exc
        return DeleteOutcome(committed, deleted, time.monotonic() - started)

    def purge_batch(self, limit: int) -> tuple[int, float]:
        """Delete up to ``limit`` matching rows (primary-key order; rows an application holds
        locked are skipped, not waited for); returns (rows, transaction seconds)."""
        info = self.info
        query = sql.SQL(
            "WITH d AS (DELETE FROM {t} WHERE ({pk}) IN (SELECT {pk} FROM {t} WHERE {c}"
            " ORDER BY {pk} LIMIT {n} FOR UPDATE SKIP LOCKED) AND {c} RETURNING 1)"
            " SELECT count(*) FROM d"
        ).format(t=info.ident(), pk=info.pk_list(), c=self.cond, n=sql.Literal(limit))
        started = time.monotonic()
        try:
            with self.conn.transaction():
                self._timeouts()
                row = self.conn.execute(query).fetchone()
        except psycopg.Error as exc:
            raise self._failed(exc, "purging a batch") from exc
        return (int(row[0]) if row else 0), time.monotonic() - started  # type: ignore[call-overload]

    def vacuum(self) -> None:
        try:
            self.conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(self.info.ident()))
        except psycopg.Error as exc:
            raise self._failed(exc, "VACUUM (ANALYZE)") from exc


@contextlib.contextmanager
def open_archive_session(
    target: Target,
    *,
    policy: str,
    table: str,
    time_column: str,
    cutoff: datetime,
    where: Mapping[str, Sequence[str | int | bool]],
    limits: Limits,
    check: Callable[[TableInfo], None] | None = None,
) -> Iterator[ArchiveSession]:
    """Connect, describe and check the table (``check`` raises for a policy it cannot run),
    and yield the session."""
    with connect(target, f"archive policy {policy}") as conn:
        try:
            apply_copy_settings(conn)
            info = describe_table(conn, table, f"archival policy {policy}")
        except psycopg.Error as exc:
            raise translate(exc, target, f"archive policy {policy}: reading the table") from exc
        if check is not None:
            check(info)
        cond = condition(time_column, cutoff, where)
        yield ArchiveSession(conn, target, info, time_column, cond, limits, policy)
