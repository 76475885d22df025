"""The sample OmniCRM app on the Supabase platform layer, loaded as the non-superuser
``postgres``: the same rows as the default sample, in tables postgres owns that reference the
platform's auth.users, with grants from the platform's default privileges.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql

from drtool.errors import DatabaseError, UsageError
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.sample.load import TABLES, SampleInfo, load_sample
from drtool.pg.sample.supabase_layer import APP_ROLE, install_supabase_platform
from tests.fixtures.pg import TEST_PASSWORD, Database

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)
SCALE = 0.02
SEED = 7
APP_TABLES = [t for t in TABLES if t.startswith("public.")]
# The columns both auth.users tables have (the platform's has many more).
USER_COLUMNS = "id, email, encrypted_password, email_confirmed_at, created_at, phone"


def checksum(conn: psycopg.Connection[Any], table: str, columns: str = "t") -> str:
    schema, name = table.split(".")
    query = sql.SQL("SELECT md5(string_agg(({})::text, ',' ORDER BY t::text)) FROM {}.{} AS t")
    row = conn.execute(
        query.format(sql.SQL(columns), sql.Identifier(schema), sql.Identifier(name))
    ).fetchone()
    assert row is not None
    return str(row[0])


def checksums(conn: psycopg.Connection[Any]) -> dict[str, str]:
    sums = {table: checksum(conn, table) for table in APP_TABLES}
    sums["auth.users"] = checksum(conn, "auth.users", f"ROW({USER_COLUMNS})")
    return sums


@pytest.fixture
def supabase_sample(supabase_cluster: EphemeralCluster) -> Iterator[tuple[Database, SampleInfo]]:
    """A new database on the Supabase cluster: platform layer, then the sample as postgres."""
    name = f"sample_supa_{uuid.uuid4().hex[:8]}"
    install_supabase_platform(supabase_cluster.create_database(name), TEST_PASSWORD)
    db = Database(name, supabase_cluster.dsn(name, user=APP_ROLE), TEST_PASSWORD, supabase_cluster)
    try:
        info = load_sample(
            db.dsn, SCALE, password=db.password, seed=SEED, as_of=AS_OF, platform="supabase"
        )
        yield db, info
    finally:
        supabase_cluster.drop_database(name)


def test_supabase_sample_matches_the_default_sample(
    supabase_sample: tuple[Database, SampleInfo], empty_db: Database
) -> None:
    db, info = supabase_sample
    plain = load_sample(empty_db.dsn, SCALE, password=empty_db.password, seed=SEED, as_of=AS_OF)
    assert info.table_rows == plain.table_rows
    assert info.heavy_user_id == plain.heavy_user_id
    with (
        psycopg.connect(db.dsn, password=db.password) as supa,
        psycopg.connect(empty_db.dsn, password=empty_db.password) as default,
    ):
        assert checksums(supa) == checksums(default)


def test_supabase_sample_is_owned_by_postgres_on_the_platform(
    supabase_sample: tuple[Database, SampleInfo],
) -> None:
    db, info = supabase_sample
    with psycopg.connect(db.dsn, password=db.password, autocommit=True) as conn:
        owners: dict[str, str] = dict(
            conn.execute(
                "SELECT relnamespace::regnamespace || '.' || relname, relowner::regrole::text "
                "FROM pg_class WHERE relkind = 'r' "
                "AND relnamespace::regnamespace::text IN ('public', 'auth')"
            ).fetchall()
        )
        fk_targets = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT confrelid::regclass::text FROM pg_constraint "
                "WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
            )
        }
        anon_can_select = conn.execute(
            "SELECT has_table_privilege('anon', 'public.contacts', 'SELECT')"
        ).fetchone()
        identities = conn.execute("SELECT count(*) FROM auth.identities").fetchone()
        user_id = info.heavy_user_id
        own = conn.execute(
            "SELECT count(*) FROM public.contacts WHERE user_id = %s", (user_id,)
        ).fetchone()
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL ROLE authenticated")
            claims = json.dumps({"sub": user_id, "role": "authenticated"})
            conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims,))
            visible = conn.execute(
                "SELECT count(*), count(DISTINCT user_id) FROM public.contacts"
            ).fetchone()
    assert {owners[t] for t in APP_TABLES} == {APP_ROLE}
    assert owners["auth.users"] == "supabase_auth_admin"
    assert "auth.users" in fk_targets
    # Supabase's default privileges, not the sample's own GRANTs: anon may select, RLS says no.
    assert anon_can_select == (True,)
    assert identities == (info.users,)
    assert own is not None and own[0] > 0
    assert visible == (own[0], 1)


def test_supabase_sample_needs_the_platform_layer(empty_db: Database) -> None:
    with pytest.raises(DatabaseError, match="no supabase platform layer"):
        load_sample(empty_db.dsn, SCALE, password=empty_db.password, platform="supabase")
    with pytest.raises(UsageError, match="unknown sample platform"):
        load_sample(empty_db.dsn, SCALE, password=empty_db.password, platform="rds")
