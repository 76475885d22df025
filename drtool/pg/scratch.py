"""Scratch databases for DR drills: where a server is (to refuse production), creating and
dropping a uniquely named database, running operator checks read-only, and what a restored
database holds (roles, schemas, extensions). The only place with SQL for drills."""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import conninfo, sql

from drtool.errors import DatabaseError
from drtool.pg.conn import Target, connect, server_version

_LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class ServerIdentity:
    """What tells one database apart from another beyond its DSN: the cluster's
    ``system_identifier`` (None if unreadable), the postmaster's start time and the database."""

    system_identifier: int | None
    started_at: datetime | None
    database: str
    database_oid: int | None

    def same_database(self, other: ServerIdentity) -> bool:
        if self.database != other.database:
            return False
        if self.system_identifier is not None and other.system_identifier is not None:
            return self.system_identifier == other.system_identifier
        # Without system_identifier: one running postmaster and one database oid in it.
        return (
            self.started_at is not None
            and self.started_at == other.started_at
            and self.database_oid == other.database_oid
        )


@dataclass(frozen=True)
class CheckOutcome:
    ok: bool
    detail: str


def dsn_with_password(target: Target) -> str:
    """The target as one conninfo string including its password, for a service that takes a
    DSN; it is never logged (the password is registered with the redactor by parse_target)."""
    if target.password is None:
        return target.conninfo
    return conninfo.make_conninfo(target.conninfo, password=target.password)


def location(target: Target) -> tuple[str, str, str]:
    """(host, port, database) with libpq's defaults applied; every loopback or unix-socket
    spelling of the local host is ``local``."""
    parts = conninfo.conninfo_to_dict(target.conninfo)
    host = str(parts.get("host") or os.environ.get("PGHOST") or "").lower()
    if host in _LOCAL_HOSTS or host.startswith("/"):
        host = "local"
    port = str(parts.get("port") or os.environ.get("PGPORT") or "5432")
    user = str(parts.get("user") or os.environ.get("PGUSER") or _os_user())
    dbname = str(parts.get("dbname") or os.environ.get("PGDATABASE") or user)
    return host, port, dbname


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def server_identity(target: Target, doing: str) -> ServerIdentity:
    with connect(target, doing) as conn:
        started, oid, dbname = conn.execute(
            "select pg_postmaster_start_time(),"
            " (select oid from pg_database where datname = current_database()),"
            " current_database()"
        ).fetchone() or (None, None, "")
        sysid: int | None = None
        try:
            row = conn.execute("select system_identifier from pg_control_system()").fetchone()
            sysid = int(row[0]) if row else None  # type: ignore[call-overload]
        except psycopg.errors.InsufficientPrivilege:
            sysid = None
    return ServerIdentity(
        system_identifier=sysid,
        started_at=started if isinstance(started, datetime) else None,
        database=str(dbname),
        database_oid=int(oid) if isinstance(oid, int) else None,
    )


def server_facts(target: Target) -> tuple[int, str]:
    """(major, version) of the server behind ``target``."""
    with connect(target, "reading the server version") as conn:
        return server_version(conn)


def create_database(server: Target, name: str) -> Target:
    """CREATE DATABASE ``name`` on the server; the target of the new database."""
    stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    try:
        with connect(server, f"creating the scratch database {name}") as conn:
            conn.execute(stmt)
    except DatabaseError as exc:
        raise DatabaseError(
            exc.message,
            hint="the scratch DSN's role needs CREATEDB (or point the drill at another server, "
            "or use the ephemeral scratch)",
        ) from exc
    return server.with_dbname(name)


def drop_database(server: Target, name: str) -> None:
    """DROP DATABASE IF EXISTS, disconnecting its sessions first (FORCE from PostgreSQL 13)."""
    with connect(server, f"dropping the scratch database {name}") as conn:
        major, _ = server_version(conn)
        if major < 13:
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                (name,),
            )
        force = sql.SQL(" WITH (FORCE)") if major >= 13 else sql.SQL("")
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force))


def database_exists(server: Target, name: str) -> bool:
    with connect(server, "looking up databases") as conn:
        row = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
    return row is not None


def run_check(target: Target, query: str, timeout_seconds: int) -> CheckOutcome:
    """Run one operator check: a single statement (a prepared statement, so ``;``-chained
    commands are refused) in a read-only transaction with a statement timeout; it passes only
    if it returns exactly one row of one boolean column that is true."""
    try:
        with connect(target, "running a drill check", autocommit=False) as conn:
            conn.execute("set transaction read only")
            conn.execute(
                sql.SQL("set local statement_timeout = {}").format(
                    sql.Literal(f"{timeout_seconds}s")
                )
            )
            cur = conn.cursor()
            try:
                cur.execute(query.encode("utf-8"), prepare=True)
                rows = cur.fetchall() if cur.description else []
                columns = len(cur.description or [])
            except psycopg.Error as exc:
                return CheckOutcome(False, _first_line(exc))
            finally:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()
    except DatabaseError as exc:
        return CheckOutcome(False, exc.message)
    if len(rows) != 1 or columns != 1:
        return CheckOutcome(
            False, f"expected one row of one boolean, got {len(rows)} row(s) of {columns} column(s)"
        )
    value = rows[0][0]
    if not isinstance(value, bool):
        return CheckOutcome(
            False, f"expected a boolean, got {type(value).__name__} {value!r}"[:200]
        )
    return CheckOutcome(value, "true" if value else "returned false")


def _first_line(exc: psycopg.Error) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def present(
    target: Target, roles: Iterable[str], schemas: Iterable[str], extensions: Iterable[str]
) -> tuple[set[str], set[str], set[str]]:
    """Which of ``roles``, ``schemas`` and ``extensions`` exist in the target database."""
    with connect(target, "checking the restored roles, schemas and extensions") as conn:
        found_roles = conn.execute(
            "select rolname from pg_roles where rolname = any(%s::text[])", (sorted(roles),)
        ).fetchall()
        found_schemas = conn.execute(
            "select nspname from pg_namespace where nspname = any(%s::text[])", (sorted(schemas),)
        ).fetchall()
        found_extensions = conn.execute(
            "select extname from pg_extension where extname = any(%s::text[])",
            (sorted(extensions),),
        ).fetchall()
    return (
        {str(r[0]) for r in found_roles},
        {str(r[0]) for r in found_schemas},
        {str(r[0]) for r in found_extensions},
    )
