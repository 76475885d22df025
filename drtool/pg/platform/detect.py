"""Which managed platform a database runs on (``drtool.platforms``), and the platform facts a
restore into a fresh project compares with its target: the platform's schema migration
versions and the columns of its data tables (Supabase ``auth.users``, ...).

Reads catalogs only, as any role (the platform's non-superuser ``postgres`` included): a
version table the role may not read, or that does not exist, gives ``None`` for that
component, never an error. On a connection already inside a transaction (the backup's
snapshot) every statement runs in a savepoint, so nothing here can abort that transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from drtool.pg.conn import Target, connect, qualified
from drtool.platforms import PLATFORMS, Platform, identify, platform_named

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True)
class PlatformFacts:
    """A detected platform and what a restore compares with a fresh project of it.

    ``schema_versions``: component -> the newest migration version as text (``None`` when the
    table is missing or not readable by the connecting role), for each of the platform's
    ``schema_versions``. ``data_tables``: ``schema.table`` -> column names in order, for each of
    the platform's ``data_tables`` that exists.
    """

    platform: Platform
    schema_versions: dict[str, str | None] = field(default_factory=dict)
    data_tables: dict[str, list[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.platform.name

    def details(self) -> dict[str, Any]:
        """The manifest's ``platform_details``."""
        return {
            "schema_versions": dict(self.schema_versions),
            "data_tables": {name: list(cols) for name, cols in self.data_tables.items()},
        }

    @classmethod
    def from_manifest(
        cls, platform: object, details: Mapping[str, Any] | None
    ) -> PlatformFacts | None:
        """The facts a manifest recorded (``platform``, ``platform_details``); None when it
        names no platform drtool knows (or predates platform detection)."""
        known = platform_named(platform) if isinstance(platform, str) else None
        if known is None:
            return None
        details = details if isinstance(details, Mapping) else {}
        versions = details.get("schema_versions")
        tables = details.get("data_tables")
        return cls(
            known,
            {
                str(k): (None if v is None else str(v))
                for k, v in (versions.items() if isinstance(versions, Mapping) else [])
            },
            {
                str(k): [str(c) for c in v]
                for k, v in (tables.items() if isinstance(tables, Mapping) else [])
                if isinstance(v, list)
            },
        )


def detect(source: Conn | Target) -> PlatformFacts | None:
    """The platform ``source`` (a connection, or a target to connect to) runs on, with its
    facts; None for self-managed PostgreSQL."""
    if isinstance(source, Target):
        with connect(source, "detecting the hosting platform") as conn:
            return detect(conn)
    markers = sorted({role for p in PLATFORMS for role in p.marker_roles})
    with source.transaction():
        rows = source.execute(
            "select rolname::text from pg_catalog.pg_roles where rolname = any(%s)", (markers,)
        ).fetchall()
    platform = identify({str(r[0]) for r in rows})
    if platform is None:
        return None
    versions = {
        component: _newest_version(source, table, column)
        for component, (table, column) in sorted(platform.schema_versions.items())
    }
    tables: dict[str, list[str]] = {}
    for name in platform.data_tables:
        columns = _columns(source, name)
        if columns:
            tables[name] = columns
    return PlatformFacts(platform, versions, tables)


def _split(name: str) -> tuple[str, str]:
    schema, _, table = name.partition(".")
    return schema, table


def _columns(conn: Conn, name: str) -> list[str]:
    """Column names of table ``schema.table`` in order; [] if there is no such table."""
    schema, table = _split(name)
    with conn.transaction():
        rows = conn.execute(
            """
            select a.attname::text
              from pg_catalog.pg_attribute a
              join pg_catalog.pg_class c on c.oid = a.attrelid
              join pg_catalog.pg_namespace n on n.oid = c.relnamespace
             where n.nspname = %s and c.relname = %s and c.relkind in ('r', 'p')
               and a.attnum > 0 and not a.attisdropped
             order by a.attnum
            """,
            (schema, table),
        ).fetchall()
    return [str(r[0]) for r in rows]


def _newest_version(conn: Conn, name: str, column: str) -> str | None:
    """The greatest value of ``column`` in table ``name`` as text (longer values are greater,
    so numeric versions compare as numbers); None if the table or column is missing, not
    readable by this role, or empty."""
    schema, table = _split(name)
    try:
        with conn.transaction():
            row = conn.execute(
                """
                select has_schema_privilege(n.oid, 'USAGE')
                       and has_column_privilege(c.oid, a.attnum, 'SELECT')
                  from pg_catalog.pg_class c
                  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                  join pg_catalog.pg_attribute a
                    on a.attrelid = c.oid and a.attname = %s and a.attnum > 0
                   and not a.attisdropped
                 where n.nspname = %s and c.relname = %s and c.relkind in ('r', 'p', 'v')
                """,
                (column, schema, table),
            ).fetchone()
            if not row or not row[0]:
                return None
            query = sql.SQL(
                "select v from (select {col}::text as v from {table}) s where v is not null"
                " order by length(v) desc, v desc limit 1"
            ).format(col=sql.Identifier(column), table=qualified(schema, table))
            found = conn.execute(query).fetchone()
    except psycopg.Error:
        # A privilege or lock problem the checks above could not foresee: unknown, not fatal.
        return None
    return str(found[0]) if found else None
