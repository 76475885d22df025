"""The Supabase test project is faithful to the platform: platform roles own the platform's
schemas, tables, event triggers and default privileges; drtool's role ``postgres`` is not a
superuser; RLS, storage's delete guard and pg_dump behave as on a real PostgreSQL 15 project.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from typing import Any

import psycopg
import pytest

from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.sample.supabase_layer import APP_ROLE, SUPABASE_ADMIN, install_supabase_platform
from tests.fixtures.pg import TEST_PASSWORD, Database
from tests.fixtures.supabase import SUPABASE_USERS, connect_app, supabase_user_ids

EVENT_TRIGGERS = {
    "pgrst_ddl_watch",
    "pgrst_drop_watch",
    "issue_pg_cron_access",
    "issue_pg_net_access",
    "issue_pg_graphql_access",
    "issue_graphql_placeholder",
}


def scalar(conn: psycopg.Connection[Any], query: str, *params: object) -> Any:
    row = conn.execute(query, params or None).fetchone()
    assert row is not None
    return row[0]


def run_tool(db: Database, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(db.cluster.bin_dir / tool), *args]
    return subprocess.run(argv, env=db.env, capture_output=True, text=True, timeout=120)


def test_postgres_is_not_a_superuser_and_cannot_create_event_triggers(
    supabase_source: Database,
) -> None:
    with connect_app(supabase_source) as conn:
        assert scalar(conn, "SELECT current_user") == APP_ROLE
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
            "rolcanlogin FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, True, True, True, True, True)
        refused = pytest.raises(psycopg.errors.InsufficientPrivilege, match="event trigger")
        with refused, conn.transaction():
            conn.execute(
                "CREATE FUNCTION public.watch() RETURNS event_trigger LANGUAGE plpgsql "
                "AS $$ BEGIN END $$"
            )
            conn.execute("CREATE EVENT TRIGGER w ON ddl_command_end EXECUTE FUNCTION watch()")
        owners: dict[str, str] = dict(
            conn.execute("SELECT evtname, evtowner::regrole::text FROM pg_event_trigger")
        )
    assert owners == dict.fromkeys(EVENT_TRIGGERS, SUPABASE_ADMIN)


def test_platform_roles_own_the_platform_schemas_and_tables(supabase_source: Database) -> None:
    with connect_app(supabase_source) as conn:
        schemas: dict[str, str] = dict(
            conn.execute("SELECT nspname, nspowner::regrole::text FROM pg_namespace")
        )
        tables: dict[str, str] = dict(
            conn.execute(
                "SELECT relnamespace::regnamespace || '.' || relname, relowner::regrole::text "
                "FROM pg_class WHERE relkind IN ('r', 'p') "
                "AND relnamespace::regnamespace::text IN ('auth', 'storage', 'public')"
            )
        )
        functions: dict[str, str] = dict(
            conn.execute(
                "SELECT pronamespace::regnamespace || '.' || proname, proowner::regrole::text "
                "FROM pg_proc WHERE pronamespace::regnamespace::text IN ('auth', 'extensions')"
            )
        )
        publication = scalar(
            conn,
            "SELECT pubowner::regrole::text FROM pg_publication WHERE pubname = %s",
            "supabase_realtime",
        )
    for schema in ("auth", "storage", "realtime", "graphql_public"):
        assert schemas[schema] == SUPABASE_ADMIN, schema
    # Upstream's init scripts run as postgres before it is demoted, so postgres owns
    # `extensions` (and the extensions in it), as `pg_dump` of a real project shows.
    assert schemas["extensions"] == APP_ROLE
    assert schemas["pgbouncer"] == "pgbouncer"
    assert tables["auth.users"] == "supabase_auth_admin"
    assert {o for t, o in tables.items() if t.startswith("auth.")} == {"supabase_auth_admin"}
    assert {o for t, o in tables.items() if t.startswith("storage.")} == {"supabase_storage_admin"}
    assert {o for t, o in tables.items() if t.startswith("public.")} == {APP_ROLE}
    assert functions["auth.uid"] == "supabase_auth_admin"
    assert functions["extensions.pgrst_ddl_watch"] == SUPABASE_ADMIN
    assert functions["extensions.gen_random_bytes"] == APP_ROLE
    assert publication == APP_ROLE


def test_default_privileges_belong_to_the_platform_roles(supabase_source: Database) -> None:
    with connect_app(supabase_source) as conn:
        rows = conn.execute(
            "SELECT defaclrole::regrole::text, defaclnamespace::regnamespace::text, defaclobjtype "
            "FROM pg_default_acl"
        ).fetchall()
        table_acl = scalar(
            conn,
            "SELECT array_agg(DISTINCT grantee::text) FROM information_schema.role_table_grants "
            "WHERE table_schema = 'public' AND table_name = 'contacts'",
        )
    entries = {(role, schema) for role, schema, _ in rows}
    for schema in ("public", "extensions", "realtime", "graphql_public"):
        assert (SUPABASE_ADMIN, schema) in entries, schema
    assert {(APP_ROLE, "public"), (APP_ROLE, "storage")} <= entries
    assert ("supabase_auth_admin", "auth") in entries
    # The app's tables got the API roles' grants from the defaults, not from explicit GRANTs.
    assert {"anon", "authenticated", "service_role"} <= set(table_acl)


def test_postgres_privileges_on_auth_and_storage(supabase_source: Database) -> None:
    with connect_app(supabase_source) as conn:
        member = {
            role: scalar(conn, "SELECT pg_has_role(current_user, %s, 'MEMBER')", role)
            for role in (
                "anon",
                "authenticated",
                "service_role",
                "pg_read_all_data",
                "supabase_auth_admin",
                "supabase_storage_admin",
                SUPABASE_ADMIN,
            )
        }
        privileges = {
            (table, priv): scalar(conn, "SELECT has_table_privilege(%s, %s)", table, priv)
            for table in ("auth.users", "auth.schema_migrations", "storage.objects")
            for priv in ("SELECT", "INSERT", "TRIGGER")
        }
        trigger = scalar(
            conn,
            "SELECT tgfoid::regproc::text FROM pg_trigger "
            "WHERE tgrelid = 'auth.users'::regclass AND tgname = 'on_auth_user_created'",
        )
        policies = scalar(
            conn,
            "SELECT count(*) FROM pg_policies "
            "WHERE schemaname = 'storage' AND tablename = 'objects'",
        )
        # postgres may INSERT into auth.users: the app's trigger fills public.profiles.
        with conn.transaction(force_rollback=True):
            user_id = str(uuid.uuid4())
            conn.execute(
                "INSERT INTO auth.users (id, aud, role, email, raw_user_meta_data) "
                "VALUES (%s, 'authenticated', 'authenticated', 'new@example.com', %s)",
                (user_id, json.dumps({"full_name": "New Person"})),
            )
            profile = scalar(conn, "SELECT full_name FROM public.profiles WHERE id = %s", user_id)
    assert member == {
        "anon": True,
        "authenticated": True,
        "service_role": True,
        "pg_read_all_data": True,
        # PostgreSQL 15 projects (see supabase_platform.sql's header).
        "supabase_auth_admin": True,
        "supabase_storage_admin": True,
        SUPABASE_ADMIN: False,
    }
    assert all(privileges.values()), privileges
    assert trigger == "handle_new_user"
    assert policies == 4
    assert profile == "New Person"


def test_rls_as_authenticated_returns_only_the_callers_rows(supabase_source: Database) -> None:
    ids = supabase_user_ids(supabase_source)
    assert ids == [uid for uid, _, _ in SUPABASE_USERS]
    with connect_app(supabase_source) as conn:
        for uid in ids[:3]:
            expected = scalar(conn, "SELECT count(*) FROM public.contacts WHERE user_id = %s", uid)
            assert expected
            with conn.transaction(force_rollback=True):
                conn.execute("SET LOCAL ROLE authenticated")
                claims = json.dumps({"sub": uid, "role": "authenticated"})
                conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims,))
                assert scalar(conn, "SELECT auth.uid()::text") == uid
                contacts = conn.execute("SELECT user_id::text FROM public.contacts").fetchall()
                notes = conn.execute("SELECT DISTINCT user_id::text FROM public.notes").fetchall()
                objects = conn.execute(
                    "SELECT DISTINCT owner_id FROM storage.objects WHERE bucket_id = 'documents'"
                ).fetchall()
            assert len(contacts) == expected
            assert {row[0] for row in contacts} == {uid}
            assert {row[0] for row in notes} == {uid}
            assert {row[0] for row in objects} <= {uid}
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL ROLE anon")
            assert scalar(conn, "SELECT count(*) FROM public.contacts") == 0


def test_direct_delete_from_storage_objects_is_refused(supabase_source: Database) -> None:
    with connect_app(supabase_source) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Direct deletion"):
            conn.execute("DELETE FROM storage.objects WHERE bucket_id = 'avatars'")
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL storage.allow_delete_query = 'true'")
            deleted = conn.execute("DELETE FROM storage.objects WHERE bucket_id = 'avatars'")
            assert deleted.rowcount == len(SUPABASE_USERS)
        assert scalar(conn, "SELECT count(*) FROM storage.objects WHERE bucket_id = 'avatars'") == 5
        owner_type = scalar(
            conn,
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = 'storage' AND table_name = 'objects' "
            "AND column_name = 'owner_id'",
        )
    assert owner_type == "text"


def test_pg_dump_and_pg_dumpall_globals_as_postgres(supabase_source: Database) -> None:
    dump = run_tool(supabase_source, "pg_dump", "--dbname", supabase_source.dsn)
    assert dump.returncode == 0, dump.stderr
    assert "CREATE TRIGGER on_auth_user_created" in dump.stdout
    assert "COPY auth.users" in dump.stdout
    assert "COPY storage.objects" in dump.stdout
    assert "CREATE EVENT TRIGGER pgrst_ddl_watch" in dump.stdout
    globals_ = run_tool(
        supabase_source,
        "pg_dumpall",
        "--globals-only",
        "--no-role-passwords",
        "--dbname",
        supabase_source.dsn,
    )
    assert globals_.returncode == 0, globals_.stderr
    assert "CREATE ROLE supabase_admin;" in globals_.stdout
    assert "GRANT supabase_auth_admin TO postgres" in globals_.stdout


def test_platform_migration_versions(supabase_source: Database) -> None:
    with connect_app(supabase_source) as conn:
        auth_max = scalar(conn, "SELECT max(version) FROM auth.schema_migrations")
        storage = conn.execute("SELECT max(id), count(*) FROM storage.migrations").fetchone()
    assert auth_max == "20260625000000"
    assert storage == (63, 64)


def test_fresh_project_has_the_platform_and_no_app_data(fresh_project: Database) -> None:
    with connect_app(fresh_project) as conn:
        assert scalar(conn, "SELECT current_user") == APP_ROLE
        assert scalar(conn, "SELECT count(*) FROM auth.users") == 0
        assert scalar(conn, "SELECT count(*) FROM storage.buckets") == 0
        assert scalar(conn, "SELECT count(*) FROM auth.schema_migrations") > 50
        assert scalar(conn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        assert scalar(conn, "SELECT count(*) FROM pg_event_trigger") == len(EVENT_TRIGGERS)
        extensions = {row[0] for row in conn.execute("SELECT extname FROM pg_extension")}
    assert {"pgcrypto", "uuid-ossp", "pg_stat_statements"} <= extensions


def test_platform_install_is_fast_and_repeatable_per_database(
    fresh_project_cluster: EphemeralCluster,
) -> None:
    names = [f"project_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    try:
        for name in names:
            dsn = fresh_project_cluster.create_database(name)
            started = time.monotonic()
            install_supabase_platform(dsn, TEST_PASSWORD)
            assert time.monotonic() - started < 2
        with psycopg.connect(
            fresh_project_cluster.dsn(names[1], user=APP_ROLE), password=TEST_PASSWORD
        ) as conn:
            assert (
                scalar(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
            )
    finally:
        for name in names:
            fresh_project_cluster.drop_database(name)


def test_newer_images_without_admin_memberships(fresh_project_cluster: EphemeralCluster) -> None:
    """Newer Supabase images revoke postgres' membership in the service admin roles: postgres
    may no longer put policies on storage.objects (on the platform supautils' policy_grants
    still allows it; supautils is not available here) but keeps TRIGGER on auth.users."""
    name = f"project_{uuid.uuid4().hex[:12]}"
    restore = f"project_{uuid.uuid4().hex[:12]}"
    try:
        dsn = fresh_project_cluster.create_database(name)
        install_supabase_platform(dsn, TEST_PASSWORD, admin_memberships=False)
        with psycopg.connect(
            fresh_project_cluster.dsn(name, user=APP_ROLE), password=TEST_PASSWORD
        ) as conn:
            assert scalar(conn, "SELECT pg_has_role('supabase_storage_admin', 'MEMBER')") is False
            assert scalar(conn, "SELECT has_table_privilege('auth.users', 'TRIGGER')") is True
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="owner"):
                conn.execute("CREATE POLICY p ON storage.objects FOR SELECT USING (true)")
    finally:
        # Memberships are cluster-wide: put the PostgreSQL 15 state back for other tests.
        install_supabase_platform(fresh_project_cluster.create_database(restore), TEST_PASSWORD)
        for db in (name, restore):
            fresh_project_cluster.drop_database(db)
