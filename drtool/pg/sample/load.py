"""The sample OmniCRM database (demo, tests, benchmarks): Supabase-style schema and skewed,
semi-compressible rows generated server-side, deterministic for a given (scale, seed, as_of).

By default the sample brings its own minimal ``auth`` schema and grants (load it as a
superuser). With ``platform="supabase"`` it is loaded on top of the Supabase platform layer
(``pg/sample/supabase_layer.py``, installed by the caller) as the non-superuser ``postgres``: its
tables reference the platform's ``auth.users``, and their grants come from the platform's
default privileges, as on a real project.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from drtool.errors import DatabaseError, UsageError
from drtool.log import get_logger

USERS_PER_SCALE = 200
MIN_USERS = 5
HEAVY_USER_SHARE = 0.01
# Rows per unit of scale: scale 1 is ~100 MB on disk (pg_database_size), 10 ~1 GB, 40 ~4 GB.
ROWS_PER_SCALE: dict[str, int] = {
    "contacts": 9_000,
    "interactions": 27_000,
    "raw_events": 27_000,
    "jobs": 13_500,
    "documents": 2_700,
    "embeddings": 5_400,
    "ai_insights": 4_500,
    "threads": 1_800,
    "messages": 18_000,
    "tool_invocations": 5_400,
    "sync_audit": 9_000,
    "sessions": 4_500,
}
# Every table of the sample, parents first.
TABLES: tuple[str, ...] = (
    "auth.users",
    "public.contacts",
    "public.interactions",
    "public.raw_events",
    "public.jobs",
    "public.documents",
    "public.embeddings",
    "public.ai_insights",
    "public.threads",
    "public.messages",
    "public.tool_invocations",
    "public.user_integrations",
    "public.user_sync_prefs",
    "public.sync_audit",
    "public.sessions",
)
ROLES: tuple[str, ...] = ("anon", "authenticated", "service_role")
PLATFORM_CHOICES: tuple[str, ...] = ("supabase",)
# The SQL files each mode runs in the load transaction, in order (after helpers.sql).
_STEPS: dict[str | None, tuple[str, ...]] = {
    None: ("auth_schema.sql", "schema.sql", "data.sql", "finish.sql", "api_grants.sql"),
    "supabase": ("schema.sql", "data.sql", "supabase_identities.sql", "finish.sql"),
}

log = get_logger("pg.sample")

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class SampleInfo:
    """What load_sample created: users, the heaviest user, exact rows per table, size on disk."""

    scale: float
    seed: int
    as_of: datetime
    users: int
    heavy_user_id: str
    database_bytes: int
    seconds: float
    table_rows: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.table_rows.values())


def plan_rows(scale: float) -> dict[str, int]:
    """Rows to generate per table (plus ``users``) at ``scale``."""
    users = max(MIN_USERS, round(USERS_PER_SCALE * scale))
    plan = {"users": users}
    plan.update({name: max(1, round(per * scale)) for name, per in ROWS_PER_SCALE.items()})
    return plan


def load_sample(
    conn_or_dsn: Conn | str,
    scale: float = 1.0,
    *,
    password: str | None = None,
    seed: int = 42,
    as_of: datetime | None = None,
    platform: str | None = None,
) -> SampleInfo:
    """Create and fill the OmniCRM sample in an empty database, then ANALYZE it.

    ``as_of`` anchors every timestamp (default: today 00:00 UTC); ``password`` is used with a DSN.
    ``platform="supabase"``: the database already has the Supabase platform layer and no
    application tables; connect as ``postgres`` (the rows are the same as without a platform,
    plus an ``auth.identities`` row per user).
    """
    if not scale > 0:
        raise UsageError(f"sample scale must be positive, got {scale}")
    if platform is not None and platform not in PLATFORM_CHOICES:
        raise UsageError(
            f"unknown sample platform {platform!r}",
            hint="use platform=None or " + ", ".join(repr(p) for p in PLATFORM_CHOICES),
        )
    anchor = as_of or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if anchor.tzinfo is None:
        raise UsageError("as_of must be timezone-aware")
    plan = plan_rows(scale)
    started = time.monotonic()
    with _connection(conn_or_dsn, password) as conn:
        dbname = conn.info.dbname
        log.info(
            "loading sample OmniCRM data into %s (scale %s, %s users)", dbname, scale, plan["users"]
        )
        if platform is not None:
            _require_platform(conn, platform)
        try:
            if platform is None:
                with conn.transaction():
                    conn.execute(_read_sql("roles.sql"))
            # One transaction: a failed load leaves nothing, and with wal_level=minimal tables
            # created and filled in the same transaction skip WAL.
            with conn.transaction():
                conn.execute("SET LOCAL statement_timeout = 0")
                conn.execute("SET LOCAL TimeZone = 'UTC'")
                conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
                # JIT-compiling these very wide expressions costs more than it saves.
                conn.execute("SET LOCAL jit = off")
                conn.execute(_helpers_sql(plan, seed, anchor))
                for name in _STEPS[platform]:
                    step = time.monotonic()
                    conn.execute(_read_sql(name))
                    log.debug("sample %s: %.1f s", name, time.monotonic() - step)
                cur = conn.cursor(row_factory=tuple_row)
                row = cur.execute("SELECT pg_temp.user_id(0)::text").fetchone()
                heavy_user_id = str(row[0]) if row else ""
                conn.execute("DROP FUNCTION " + ", ".join(_HELPER_SIGNATURES))
            conn.execute("ANALYZE")
            tables = _count_rows(conn)
            size_row = cur.execute("SELECT pg_database_size(current_database())").fetchone()
        except psycopg.errors.DuplicateSchema as exc:
            raise DatabaseError(
                f"database {dbname} already has an auth schema: the sample needs an empty database",
                hint="create a new database for the sample or drop the existing one",
            ) from exc
        except psycopg.Error as exc:
            hint = (
                "load the sample as a superuser into a new, empty database"
                if platform is None
                else "load it as postgres into a database with the platform layer only"
            )
            raise DatabaseError(
                f"loading the sample OmniCRM data into database {dbname} failed: {exc}",
                hint=hint,
            ) from exc
    seconds = time.monotonic() - started
    info = SampleInfo(
        scale=scale,
        seed=seed,
        as_of=anchor,
        users=tables["auth.users"],
        heavy_user_id=heavy_user_id,
        database_bytes=int(size_row[0]) if size_row else 0,
        seconds=round(seconds, 3),
        table_rows=tables,
    )
    log.info(
        "sample loaded into %s: %s rows, %.0f MB, %.1f s",
        dbname,
        info.rows,
        info.database_bytes / 1e6,
        seconds,
    )
    return info


@contextmanager
def _connection(conn_or_dsn: Conn | str, password: str | None) -> Iterator[Conn]:
    if not isinstance(conn_or_dsn, str):
        yield conn_or_dsn
        return
    try:
        conn = psycopg.connect(conn_or_dsn, password=password, autocommit=True)
    except psycopg.Error as exc:
        raise DatabaseError(
            f"could not connect to load the sample data: {exc}",
            hint="check the DSN and the password",
        ) from exc
    with conn:
        yield conn


def _require_platform(conn: Conn, platform: str) -> None:
    """The platform layer must be there already: the sample only adds the application."""
    cur = conn.cursor(row_factory=tuple_row)
    row = cur.execute("SELECT to_regclass('auth.users') IS NOT NULL").fetchone()
    if not (row and row[0]):
        raise DatabaseError(
            f"database {conn.info.dbname} has no {platform} platform layer (no auth.users)",
            hint="install it first (drtool.pg.sample.supabase_layer.install_supabase_platform)",
        )


def _count_rows(conn: Conn) -> dict[str, int]:
    cur = conn.cursor(row_factory=tuple_row)
    counts: dict[str, int] = {}
    for name in TABLES:
        schema, table = name.split(".")
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        row = cur.execute(query).fetchone()
        counts[name] = int(row[0]) if row else 0
    return counts


# Every pg_temp function the SQL files create; dropped so a caller's session stays clean.
_HELPER_SIGNATURES = (
    "pg_temp.h(bigint, int)",
    "pg_temp.u(bigint, int)",
    "pg_temp.pick(bigint, int, bigint)",
    "pg_temp.one(bigint, int, anyarray)",
    "pg_temp.rb(bigint, int)",
    "pg_temp.hex(bigint, int)",
    "pg_temp.uid(text, bigint)",
    "pg_temp.user_id(bigint)",
    "pg_temp.owner(bigint, int)",
    "pg_temp.ago(bigint, int, interval)",
    "pg_temp.iso(timestamptz)",
    "pg_temp.as_of()",
    "pg_temp.n(text)",
    "pg_temp.w(bytea, int)",
    "pg_temp.s16(bytea, int)",
    "pg_temp.s8(bytea, int)",
    "pg_temp.para(bytea)",
    "pg_temp.first_name(bigint, int)",
    "pg_temp.last_name(bigint, int)",
    "pg_temp.company(bigint, int)",
    "pg_temp.thread_contact(bigint)",
    "pg_temp.thread_owner(bigint)",
)


def _helpers_sql(plan: dict[str, int], seed: int, as_of: datetime) -> str:
    counts = " ".join(f"WHEN '{name}' THEN {rows}" for name, rows in plan.items())
    heavy = max(1, round(plan["users"] * HEAVY_USER_SHARE))
    values = {
        "SEED": str(int(seed)),
        # Keeps different seeds' hash streams apart for every salt below 1000003.
        "SEED_BASE": str(int(seed) * 1_000_003),
        "N_USERS": str(plan["users"]),
        "N_HEAVY": str(heavy),
        "AS_OF": as_of.astimezone(UTC).isoformat(),
        "COUNTS": counts,
    }
    text = _read_sql("helpers.sql")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _read_sql(name: str) -> str:
    return resources.files("drtool.pg").joinpath("sample", name).read_text(encoding="utf-8")
