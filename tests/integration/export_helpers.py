"""Helpers for the per-user export tests: a private copy of the sample database, and
fingerprints of one user's rows (and of everyone else's) computed with SQL on the database."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from drtool.config import StorageConfig
from drtool.pg.cluster.ephemeral import EphemeralCluster
from tests.fixtures.cli import Setup, make_setup

SAMPLE_USER_TABLES = (
    "auth.users",
    "public.contacts",
    "public.interactions",
    "public.raw_events",
    "public.jobs",
    "public.documents",
    "public.ai_insights",
    "public.threads",
    "public.messages",
    "public.tool_invocations",
    "public.user_integrations",
    "public.user_sync_prefs",
    "public.sync_audit",
    "public.sessions",
)
# With the default configuration (no exports.exclude_tables), embeddings are exported too.
ALL_USER_TABLES = (*SAMPLE_USER_TABLES, "public.embeddings")


def copy_database(cluster: EphemeralCluster, template: str) -> tuple[str, str]:
    """A new database cloned from ``template`` (retried while a connection lingers)."""
    name = f"copy_{uuid.uuid4().hex[:10]}"
    for attempt in range(50):
        try:
            with cluster.connect("postgres") as conn:
                conn.autocommit = True
                conn.execute(
                    sql.SQL("create database {} template {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
            break
        except psycopg.errors.ObjectInUse:
            if attempt == 49:
                raise
            time.sleep(0.2)
    return name, cluster.dsn(name)


def user_column(table: str) -> str:
    return "id" if table == "auth.users" else "user_id"


def fingerprint(
    conn: psycopg.Connection[tuple[object, ...]],
    user_id: str,
    tables: tuple[str, ...] = SAMPLE_USER_TABLES,
    *,
    others: bool = False,
    column: str | None = None,
) -> dict[str, tuple[int, str]]:
    """(rows, md5 of the sorted row texts) per table, of the user's rows or everyone else's."""
    out: dict[str, tuple[int, str]] = {}
    for table in tables:
        schema, name = table.split(".", 1)
        col = column or user_column(table)
        op = sql.SQL("is distinct from" if others else "=")
        row = conn.execute(
            sql.SQL(
                "select count(*), coalesce(md5(string_agg(t::text, '|' order by t::text)), '') "
                "from {}.{} t where {} {} %s"
            ).format(sql.Identifier(schema), sql.Identifier(name), sql.Identifier(col), op),
            (user_id,),
        ).fetchone()
        assert row is not None
        out[table] = (int(row[0]), str(row[1]))  # type: ignore[call-overload]
    return out


def delete_user_rows(conn: psycopg.Connection[tuple[object, ...]], user_id: str) -> None:
    """Children first, the users-table row kept (as an accidental app-side deletion would)."""
    for table in reversed(SAMPLE_USER_TABLES[1:]):
        schema, name = table.split(".", 1)
        conn.execute(
            sql.SQL("delete from {}.{} where user_id = %s").format(
                sql.Identifier(schema), sql.Identifier(name)
            ),
            (user_id,),
        )


def people_setup(empty_db: Any, directory: Path, storage: StorageConfig, *statements: str) -> Setup:
    """``statements`` run on the empty database (a schema whose users table is
    ``public.people``), and a configuration for it: ``exports.users_table: public.people``,
    the password in the environment as an operator's shell would have it."""
    with empty_db.connect() as conn:
        conn.autocommit = True
        for statement in statements:
            conn.execute(statement)
    setup = make_setup(directory / "cfg", empty_db.dsn, empty_db.password, storage)
    setup.doc["exports"] = {"users_table": "public.people"}
    setup.write()
    setup.env["PGPASSWORD"] = empty_db.password
    return setup
