"""Putting archived rows back: COPY a verified batch into a temporary table, then insert the
rows whose primary key is missing (and whose time is in range) in the same transaction;
identity values are kept (OVERRIDING SYSTEM VALUE) and sequences moved past them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import datetime

import psycopg
from psycopg import sql

from drtool.errors import UsageError
from drtool.pg.archive.table import Conn, TableInfo, describe_table
from drtool.pg.conn import Target, apply_copy_settings, connect, translate

TEMP_TABLE = "drtool_archive_restore"


class RestoreTarget:
    """The database archived rows go back into."""

    def __init__(self, conn: Conn, target: Target) -> None:
        self.conn = conn
        self.target = target
        self._tables: dict[str, TableInfo] = {}

    def table(self, name: str, columns: Sequence[str]) -> TableInfo:
        if name not in self._tables:
            info = describe_table(self.conn, name, "archive restore --to")
            missing = [c for c in columns if c not in info.types]
            if missing:
                raise UsageError(
                    f"archive restore --to: table {info.qualified} has no column(s) "
                    f"{', '.join(missing)} that the archive holds",
                    hint="restore into a database with the archived table's columns",
                )
            self._tables[name] = info
        return self._tables[name]

    def insert_missing(
        self,
        table: str,
        columns: Sequence[str],
        pk: Sequence[str],
        time_column: str,
        lines: Sequence[bytes],
        since: datetime | None,
        until: datetime | None,
    ) -> int:
        """Insert the batch's rows that are absent (by primary key) and in [since, until);
        one transaction; returns the number inserted."""
        info = self.table(table, columns)
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        tmp = sql.Identifier(TEMP_TABLE)
        same_pk = sql.SQL(" AND ").join(
            sql.SQL("x.{c} = s.{c}").format(c=sql.Identifier(c)) for c in pk
        )
        ranges: list[sql.Composable] = [sql.SQL("true")]
        if since is not None:
            ranges.append(
                sql.SQL("s.{} >= {}").format(sql.Identifier(time_column), sql.Literal(since))
            )
        if until is not None:
            ranges.append(
                sql.SQL("s.{} < {}").format(sql.Identifier(time_column), sql.Literal(until))
            )
        overriding = sql.SQL(" OVERRIDING SYSTEM VALUE") if info.identity else sql.SQL("")
        insert = sql.SQL(
            "INSERT INTO {t} ({cols}){ov} SELECT {scols} FROM {tmp} s"
            " WHERE NOT EXISTS (SELECT 1 FROM {t} x WHERE {same}) AND {ranges}"
        ).format(
            t=info.ident(),
            cols=cols,
            ov=overriding,
            scols=sql.SQL(", ").join(sql.Identifier("s", c) for c in columns),
            tmp=tmp,
            same=same_pk,
            ranges=sql.SQL(" AND ").join(ranges),
        )
        try:
            with self.conn.transaction():
                self.conn.execute(
                    sql.SQL(
                        "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
                    ).format(tmp, cols, info.ident())
                )
                with (
                    self.conn.cursor() as cur,
                    cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(tmp, cols)) as copy,
                ):
                    for line in lines:
                        copy.write(line + b"\n")
                inserted = self.conn.execute(insert).rowcount
                self._bump_sequences(info)
        except psycopg.Error as exc:
            raise translate(exc, self.target, f"archive restore into {info.qualified}") from exc
        return max(inserted, 0)

    def _bump_sequences(self, info: TableInfo) -> None:
        """Move a serial/identity sequence past the largest restored value (never back)."""
        for column in info.pk:
            row = self.conn.execute(
                "select pg_get_serial_sequence(format('%%I.%%I', %s::text, %s::text), %s)",
                (info.schema, info.name, column),
            ).fetchone()
            if not row or not row[0]:
                continue
            self.conn.execute(
                sql.SQL(
                    "select setval(%s::regclass, m) from (select max({c}) as m from {t}) s"
                    " where m > coalesce(pg_sequence_last_value(%s::regclass), 0)"
                ).format(c=sql.Identifier(column), t=info.ident()),
                (row[0], row[0]),
            )


@contextlib.contextmanager
def open_restore_target(target: Target) -> Iterator[RestoreTarget]:
    with connect(target, "archive restore") as conn:
        try:
            apply_copy_settings(conn)
        except psycopg.Error as exc:
            raise translate(exc, target, "archive restore") from exc
        yield RestoreTarget(conn, target)
