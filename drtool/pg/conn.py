"""Connections: DSNs split into a password-free conninfo and a password;
psycopg errors translated."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg import conninfo, sql

from drtool.errors import DatabaseError, UsageError
from drtool.log import REDACTOR

CONNECT_TIMEOUT_S = 15


@dataclass(frozen=True)
class Target:
    """A database to connect to: conninfo without any password, and the password kept apart."""

    conninfo: str
    password: str | None = None

    @property
    def dbname(self) -> str:
        return str(conninfo.conninfo_to_dict(self.conninfo).get("dbname") or "")

    def describe(self) -> str:
        """Host, port and database for messages; never the password."""
        parts = conninfo.conninfo_to_dict(self.conninfo)
        host = parts.get("host") or "localhost"
        port = parts.get("port") or "5432"
        return f"{host}:{port}/{parts.get('dbname') or ''}"

    @property
    def user(self) -> str | None:
        user = conninfo.conninfo_to_dict(self.conninfo).get("user")
        return str(user) if user else None

    def redacted(self) -> str:
        """``user@host:port/db`` for the audit trail: never a password nor other options."""
        user = self.user
        return f"{user}@{self.describe()}" if user else self.describe()

    def with_dbname(self, dbname: str) -> Target:
        parts = conninfo.conninfo_to_dict(self.conninfo)
        parts["dbname"] = dbname
        return Target(
            conninfo.make_conninfo(**{k: str(v) for k, v in parts.items()}), self.password
        )


def parse_target(dsn: str, password: str | None = None) -> Target:
    """Split ``dsn`` into a password-free conninfo and a password (``password``, else the
    DSN's own)."""
    try:
        parts = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise UsageError("database.dsn is not a valid PostgreSQL connection string") from exc
    embedded = parts.pop("password", None)
    secret = password if password is not None else (str(embedded) if embedded else None)
    REDACTOR.add(secret)
    clean = conninfo.make_conninfo(**{k: str(v) for k, v in parts.items()})
    return Target(clean, secret)


def translate(exc: psycopg.Error, target: Target, doing: str) -> DatabaseError:
    """A psycopg error as a DatabaseError naming the target and what we were doing."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DatabaseError(f"{doing} on {target.describe()} failed: {detail}")


@contextlib.contextmanager
def connect(
    target: Target, doing: str, autocommit: bool = True
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection (password as a keyword, never in a logged string); errors translated."""
    try:
        conn = psycopg.connect(
            target.conninfo,
            password=target.password,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="drtool",
        )
    except psycopg.Error as exc:
        raise translate(exc, target, f"connecting for {doing}") from exc
    try:
        yield conn
    except psycopg.Error as exc:
        raise translate(exc, target, doing) from exc
    finally:
        conn.close()


# Session settings under which COPY text is deterministic and exactly restorable, whatever the
# database's or role's defaults (pg_dump sets the same: ISO dates, postgres intervals, every
# float digit); rows are written and read back under them.
COPY_SETTINGS: dict[str, str] = {
    "timezone": "UTC",
    "datestyle": "ISO, MDY",
    "intervalstyle": "postgres",
    "extra_float_digits": "3",
    "bytea_output": "hex",
}


def apply_copy_settings(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    for name, value in COPY_SETTINGS.items():
        conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))


def table_oid(conn: psycopg.Connection[tuple[object, ...]], schema: str, name: str) -> int | None:
    """The oid of an ordinary or partitioned table, or None if there is no such table."""
    row = conn.execute(
        "select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s and c.relkind in ('r', 'p')",
        (schema, name),
    ).fetchone()
    return int(row[0]) if row else None  # type: ignore[call-overload]


def qualified(schema: str, table: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def server_version(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[int, str]:
    """(major, full version string) of the server."""
    num = conn.info.server_version
    row = conn.execute("select current_setting('server_version')").fetchone()
    return num // 10000, str(row[0]) if row else str(num)
