"""A Supabase-faithful platform layer for tests, demos and drills: the roles, schemas, event
triggers, default privileges and auth/storage tables a new Supabase (PostgreSQL 15) project has
before its first migration, owned as on the platform (sample/supabase_platform.sql says which
upstream facts it reproduces).

Install it as the cluster's bootstrap superuser ``supabase_admin`` (an ``EphemeralCluster``
started with ``superuser="supabase_admin"``) into an empty database; the application then
connects as the non-superuser ``postgres``, as drtool does on the real platform.
"""

from __future__ import annotations

import time
from importlib import resources

import psycopg
from psycopg import sql

from drtool.errors import DatabaseError
from drtool.log import get_logger
from drtool.pg.conn import connect, parse_target

SUPABASE_ADMIN = "supabase_admin"
APP_ROLE = "postgres"
PLATFORM_SQL = "supabase_platform.sql"
# The tables supautils' policy_grants lets postgres put policies on when it is not a member of
# their owners (newer images; supabase/postgres ansible/files/postgresql_config/supautils.conf.j2
# on the platform; supautils is not available here).
POLICY_GRANT_TABLES: tuple[str, ...] = (
    "auth.audit_log_entries",
    "auth.identities",
    "auth.refresh_tokens",
    "auth.sessions",
    "auth.users",
    "realtime.messages",
    "storage.buckets",
    "storage.migrations",
    "storage.objects",
    "storage.s3_multipart_uploads",
    "storage.s3_multipart_uploads_parts",
)

log = get_logger("pg.supabase_layer")


def platform_sql() -> str:
    """The platform layer's SQL (run as ``supabase_admin`` in one transaction)."""
    return resources.files("drtool.pg").joinpath("sample", PLATFORM_SQL).read_text(encoding="utf-8")


def install_supabase_platform(
    dsn: str,
    password: str | None,
    *,
    app_password: str | None = None,
    admin_memberships: bool = True,
) -> None:
    """Install the platform layer into the empty database ``dsn`` names, connecting as the
    superuser with ``password``; then ``postgres`` logs in with ``app_password`` (default:
    ``password``).

    ``admin_memberships`` keeps ``postgres`` a member of ``supabase_auth_admin``,
    ``supabase_storage_admin`` and ``supabase_realtime_admin`` as on PostgreSQL 15 projects;
    ``False`` gives newer images' state (no membership). Memberships are cluster-wide: the
    last install on a cluster decides them for all its databases.
    """
    started = time.monotonic()
    target = parse_target(dsn, password)
    with connect(target, "installing the Supabase platform layer") as conn:
        dbname = conn.info.dbname
        try:
            with conn.transaction():
                memberships = "on" if admin_memberships else "off"
                conn.execute(
                    "SELECT set_config('drtool.supabase_admin_memberships', %s, true)",
                    (memberships,),
                )
                conn.execute(platform_sql())
                secret = app_password if app_password is not None else password
                if secret is not None:
                    conn.execute(
                        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                            sql.Identifier(APP_ROLE), sql.Literal(secret)
                        )
                    )
        except psycopg.errors.DuplicateSchema as exc:
            raise DatabaseError(
                f"database {dbname} already has Supabase's schemas: the platform layer needs "
                "an empty database",
                hint="create a new database for it",
            ) from exc
        except psycopg.Error as exc:
            raise DatabaseError(
                f"installing the Supabase platform layer into database {dbname} failed: {exc}",
                hint="install it as the bootstrap superuser supabase_admin into an empty database",
            ) from exc
    log.debug("Supabase platform layer installed in %s: %.2f s", dbname, time.monotonic() - started)
