"""Which users to export: keyset-paginated pages of user ids (all, or those with a row written
since a time, judged by the tables' updated_at/created_at-style columns)."""

from __future__ import annotations

from datetime import datetime

from psycopg import sql

from drtool.pg.conn import qualified
from drtool.pg.userdata.tables import Conn, Discovery, UserTable, as_int, is_text_type


def count_users(conn: Conn, users: UserTable) -> int:
    row = conn.execute(
        sql.SQL("select count(*) from {}").format(qualified(users.schema, users.name))
    ).fetchone()
    return as_int(row[0]) if row else 0


def _after(users: UserTable, after: str | None) -> sql.Composable:
    if after is None:
        return sql.SQL("true")
    return sql.SQL('"u".{id} > {after}').format(
        id=sql.Identifier(users.user_column), after=sql.Literal(after)
    )


def user_ids(conn: Conn, users: UserTable, after: str | None, limit: int) -> list[str]:
    """The next ``limit`` user ids after ``after``, in the id column's order."""
    query = sql.SQL(
        "select u.{id}::text from {t} u where {after} order by u.{id} limit {n}"
    ).format(
        id=sql.Identifier(users.user_column),
        t=qualified(users.schema, users.name),
        after=_after(users, after),
        n=sql.Literal(limit),
    )
    return [str(r[0]) for r in conn.execute(query).fetchall()]


def changed_user_ids(
    conn: Conn, discovery: Discovery, since: datetime, after: str | None, limit: int
) -> list[str]:
    """Users with a row whose time column (updated_at, created_at, inserted_at, modified_at) is
    at or after ``since`` in any user-scoped table, the users table included. Deletions leave
    no row behind and are not seen."""
    users = discovery.users_table
    uid = sql.SQL('"u".{}').format(sql.Identifier(users.user_column))
    tests: list[sql.Composable] = []
    for table in discovery.tables:
        if not table.time_columns:
            continue
        alias = "u" if table.is_users_table else "x"
        recent = sql.SQL(" or ").join(
            sql.SQL("{}.{} >= {}").format(
                sql.Identifier(alias), sql.Identifier(c), sql.Literal(since)
            )
            for c in table.time_columns
        )
        if table.is_users_table:
            tests.append(recent)
        else:
            tests.append(
                sql.SQL(
                    'exists (select 1 from {t} "x" where "x".{col} = {uid} and ({recent}))'
                ).format(
                    t=qualified(table.schema, table.name),
                    col=sql.Identifier(table.user_column),
                    # A text user column (storage.objects.owner_id) holds the id as text.
                    uid=sql.SQL("{}::text").format(uid) if is_text_type(table.user_type) else uid,
                    recent=recent,
                )
            )
    if not tests:
        return []
    query = sql.SQL(
        'select {uid}::text from {t} "u" where {after} and ({tests}) order by {uid} limit {n}'
    ).format(
        uid=uid,
        t=qualified(users.schema, users.name),
        after=_after(users, after),
        tests=sql.SQL(" or ").join(tests),
        n=sql.Literal(limit),
    )
    return [str(r[0]) for r in conn.execute(query).fetchall()]
