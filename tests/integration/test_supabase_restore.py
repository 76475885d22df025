"""Restores and drills on the real Supabase structure (tests/fixtures/supabase.py): the
platform's superuser ``supabase_admin`` owns schemas, event triggers and default privileges,
and drtool connects as the non-superuser ``postgres`` (SPEC "Managed PostgreSQL")."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drtool.config import StorageConfig
from drtool.pg.cluster.ephemeral import EphemeralCluster
from tests.fixtures.cli import Setup, make_setup
from tests.fixtures.pg import TEST_PASSWORD, require_initdb
from tests.integration.restore_support import backup, checksums, connect, scalar, user_tables

API_ROLES = ("anon", "authenticated", "service_role")
PW = {"PGPASSWORD": TEST_PASSWORD}  # every target role here has the test password
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
# What the platform made in a project, which a restore into it must leave as it was.
PLATFORM_STATE = (
    "select string_agg(evtname || ':' || evtowner::regrole::text, ',' order by evtname)"
    " from pg_event_trigger",
    "select string_agg(d, ',' order by d) from (select defaclrole::regrole::text || ':'"
    " || defaclnamespace::regnamespace::text || ':' || defaclobjtype::text || ':'"
    " || defaclacl::text as d from pg_default_acl) s",
    "select string_agg(extname || ':' || extowner::regrole::text, ',' order by extname)"
    " from pg_extension",
    "select string_agg(nspname || ':' || nspowner::regrole::text, ',' order by nspname)"
    " from pg_namespace where nspname in ('auth', 'storage', 'extensions', 'realtime')",
)


@pytest.fixture(scope="module")
def supa_backup(
    supabase_source: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Setup, str]:
    """One backup of the Supabase source, taken as ``postgres``; the setup that holds it."""
    root = tmp_path_factory.mktemp("supa")
    storage = StorageConfig(url=(root / "storage").as_uri())
    setup = make_setup(root / "cfg", supabase_source.dsn, supabase_source.password, storage)
    return setup, backup(setup)


@pytest.fixture
def superuser_cluster() -> Iterator[EphemeralCluster]:
    """An empty cluster whose bootstrap superuser is ``postgres`` (self-hosted)."""
    require_initdb()
    with EphemeralCluster(password=TEST_PASSWORD) as cluster:
        yield cluster


def run_restore(setup: Setup, *args: str, expect: int | None = 0) -> Any:
    return setup.run("restore", *args, expect=expect, extra_env=PW)


def _tables(dsn: str, schemas: tuple[str, ...] = ("public", "auth", "storage")) -> list[str]:
    return [t for t in user_tables(dsn, TEST_PASSWORD) if t.split(".")[0] in schemas]


def _grants(dsn: str, tables: list[str]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    with connect(dsn, TEST_PASSWORD) as conn:
        for table in tables:
            for role in API_ROLES:
                for priv in PRIVILEGES:
                    row = conn.execute(
                        "select has_table_privilege(%s, %s, %s)", (role, table, priv)
                    ).fetchone()
                    assert row is not None
                    out[f"{role} {priv} {table}"] = bool(row[0])
    return out


def _owners(dsn: str) -> dict[str, str]:
    with connect(dsn, TEST_PASSWORD) as conn:
        rows = conn.execute(
            "select schemaname || '.' || tablename, tableowner from pg_tables"
            " where schemaname in ('public', 'auth', 'storage')"
        ).fetchall()
    return {r[0]: r[1] for r in rows}


def test_backup_names_the_platform_and_the_drill_passes(supa_backup: tuple[Setup, str]) -> None:
    setup, backup_id = supa_backup
    manifest = setup.run("show", backup_id, "--json").json
    assert manifest["platform"] == "supabase"
    drill = setup.run("rehearse", backup_id, "--json", expect=None)
    assert drill.code == 0, drill.stderr
    assert drill.json["verdict"] == "pass"
    created = set(drill.json.get("scratch", {}).get("roles_created", []))
    assert {"supabase_admin", "supabase_auth_admin"} <= created or drill.code == 0


def test_superuser_target_keeps_owners_and_grants(
    supa_backup: tuple[Setup, str], supabase_source: Any, superuser_cluster: EphemeralCluster
) -> None:
    setup, backup_id = supa_backup
    dsn = superuser_cluster.create_database("restored")
    doc = run_restore(setup, backup_id, "--to", dsn, "--json").json
    assert "supabase_admin" in doc["roles_created"]
    superuser = "select rolsuper from pg_roles where rolname = 'supabase_admin'"
    assert scalar(dsn, TEST_PASSWORD, superuser) is True
    tables = _tables(supabase_source.dsn)
    assert _owners(dsn) == _owners(supabase_source.dsn)
    assert _grants(dsn, tables) == _grants(supabase_source.dsn, tables)
    assert checksums(dsn, TEST_PASSWORD, tables) == checksums(
        supabase_source.dsn, TEST_PASSWORD, tables
    )


def test_no_owner_keeps_grants_and_role_map_moves_ownership(
    supa_backup: tuple[Setup, str], supabase_source: Any, superuser_cluster: EphemeralCluster
) -> None:
    setup, backup_id = supa_backup
    tables = _tables(supabase_source.dsn)
    dsn = superuser_cluster.create_database("no_owner")
    run_restore(setup, backup_id, "--to", dsn, "--no-owner", "-q")
    assert set(_owners(dsn).values()) == {"postgres"}  # the restoring superuser
    assert _grants(dsn, tables) == _grants(supabase_source.dsn, tables)
    mapped = superuser_cluster.create_database("mapped")
    with superuser_cluster.connect() as conn:
        conn.execute("create role platform_owner nologin")
    run_restore(
        setup,
        backup_id,
        "--to",
        mapped,
        "--role-map",
        "supabase_auth_admin=platform_owner",
        "-q",
    )
    owners = _owners(mapped)
    assert owners["auth.users"] == "platform_owner"
    source = _owners(supabase_source.dsn)
    assert {t for t, o in source.items() if o == "supabase_auth_admin"} == {
        t for t, o in owners.items() if o == "platform_owner"
    }
    assert _grants(mapped, tables) == _grants(supabase_source.dsn, tables)


def _rls_rows(dsn: str, user_id: str, table: str) -> int:
    claims = json.dumps({"sub": user_id, "role": "authenticated"})
    with connect(dsn, TEST_PASSWORD) as conn, conn.transaction():
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
        row = conn.execute(f"select count(*) from {table}").fetchone()
        assert row is not None
        return int(row[0])


def test_restore_into_a_fresh_project_as_postgres(
    supa_backup: tuple[Setup, str], supabase_source: Any, fresh_project: Any
) -> None:
    setup, backup_id = supa_backup
    to = fresh_project.dsn
    is_super = "select rolsuper from pg_roles where rolname = current_user"
    assert scalar(to, TEST_PASSWORD, is_super) is False
    dry = run_restore(setup, backup_id, "--to", to, "--dry-run", "--json").json
    assert dry["plan"]["platform"] == "supabase"
    assert "auth.users" in dry["plan"]["staged"]
    assert user_tables(to, TEST_PASSWORD) == user_tables(to, TEST_PASSWORD)
    before = {q: scalar(to, TEST_PASSWORD, q) for q in PLATFORM_STATE}
    doc = run_restore(setup, backup_id, "--to", to, "--json").json
    assert doc["roles_created"] == []
    app = _tables(supabase_source.dsn, ("public",))
    platform_tables = ["auth.users", "auth.identities", "storage.buckets", "storage.objects"]
    for table in app + platform_tables:
        assert checksums(to, TEST_PASSWORD, [table]) == checksums(
            supabase_source.dsn, TEST_PASSWORD, [table]
        ), table
    assert _grants(to, app) == _grants(supabase_source.dsn, app)
    # The platform's own objects are as the project made them.
    owner = "select nspowner::regrole::text from pg_namespace where nspname = 'auth'"
    assert scalar(to, TEST_PASSWORD, owner) == "supabase_admin"
    for query in PLATFORM_STATE:
        assert scalar(to, TEST_PASSWORD, query) == before[query], query
    # The app's trigger on auth.users came back with it.
    trigger = "select count(*) from pg_trigger where tgname = 'on_auth_user_created'"
    assert scalar(to, TEST_PASSWORD, trigger) == 1
    # Row-level security as a signed-in user: exactly that user's rows.
    users = [
        str(r[0])
        for r in connect(supabase_source.dsn, TEST_PASSWORD)
        .execute("select id from auth.users order by id")
        .fetchall()
    ]
    scoped = [
        t
        for t in app
        if scalar(
            supabase_source.dsn,
            TEST_PASSWORD,
            "select count(*) from information_schema.columns where table_schema = 'public'"
            f" and table_name = '{t.split('.')[1]}' and column_name = 'user_id'",
        )
    ]
    assert scoped
    for user_id in users[:3]:
        for table in scoped:
            expected = scalar(
                supabase_source.dsn,
                TEST_PASSWORD,
                f"select count(*) from {table} where user_id = '{user_id}'",
            )
            assert _rls_rows(to, user_id, table) == expected
    assert _rls_rows(to, str(uuid.uuid4()), scoped[0]) == 0


def test_a_project_on_another_platform_version_is_named_before_anything_changes(
    supa_backup: tuple[Setup, str], fresh_project: Any
) -> None:
    setup, backup_id = supa_backup
    with fresh_project.cluster.connect(fresh_project.name) as conn:
        conn.execute("alter table auth.users drop column is_anonymous")
        conn.execute(
            "delete from auth.schema_migrations"
            " where version = (select max(version) from auth.schema_migrations)"
        )
    to = fresh_project.dsn
    dry = run_restore(setup, backup_id, "--to", to, "--dry-run", expect=1)
    assert "auth.users lacks columns" in dry.stderr and "is_anonymous" in dry.stderr
    assert "auth schema version differs" in dry.stderr
    real = run_restore(setup, backup_id, "--to", to, expect=1)
    assert "is_anonymous" in real.stderr
    assert _tables(to, ("public",)) == []


def _plain_target(cluster: EphemeralCluster, name: str) -> str:
    """A database owned by a non-superuser on a plain cluster (no platform roles)."""
    with cluster.connect() as conn:
        conn.execute(f"create role {name} login password '{TEST_PASSWORD}' createdb")
        conn.execute(f"create database {name} owner {name}")
    return cluster.dsn(name, user=name)


def test_dry_run_names_every_obstacle_and_the_real_run_agrees(
    supa_backup: tuple[Setup, str], fresh_project: Any, superuser_cluster: EphemeralCluster
) -> None:
    """A property over the obstacle cases: wherever --dry-run says go, the restore succeeds;
    wherever it names obstacles, the restore fails the same way and changes nothing."""
    setup, backup_id = supa_backup
    plain = _plain_target(superuser_cluster, "plain_owner")
    cases: list[tuple[str, str, tuple[str, ...]]] = [
        # Not a platform project, not a superuser: roles, event triggers, extensions,
        # default privileges of supabase_admin.
        ("plain target", plain, ()),
        ("plain target, no owner", plain, ("--no-owner",)),
        ("plain target, bare", plain, ("--no-owner", "--no-privileges")),
        ("plain target, mapped", plain, ("--role-map", "supabase_admin=plain_owner")),
        ("fresh project", fresh_project.dsn, ()),
        ("fresh project again", fresh_project.dsn, ()),
        ("fresh project again, forced", fresh_project.dsn, ("--force",)),
        ("superuser target", superuser_cluster.create_database("as_super"), ()),
        ("superuser target again, forced", superuser_cluster.dsn("as_super"), ("--force",)),
    ]
    outcomes = {}
    for label, to, flags in cases:
        before = user_tables(to, TEST_PASSWORD)
        dry = run_restore(setup, backup_id, "--to", to, "--dry-run", *flags, expect=None)
        real = run_restore(setup, backup_id, "--to", to, *flags, expect=None)
        assert (dry.code == 0) == (real.code == 0), (label, dry.stderr, real.stderr)
        outcomes[label] = real.code
        if dry.code != 0:
            assert real.code == dry.code, label
            if dry.code == 1:
                assert "obstacle" in dry.stderr and "resolve:" in dry.stderr, label
            else:  # 5: a non-empty target, refused with the flag that overrides it
                assert "--force" in dry.stderr, label
            assert real.stderr.split("\n", 1)[0] == dry.stderr.split("\n", 1)[0], label
            assert user_tables(to, TEST_PASSWORD) == before, label
    # Both answers occur: the cases are not all refusals.
    assert outcomes["fresh project"] == outcomes["superuser target"] == 0
    assert outcomes["fresh project again"] == 5 and outcomes["fresh project again, forced"] == 0
    assert outcomes["superuser target again, forced"] == 0
    plain_dry = run_restore(setup, backup_id, "--to", plain, "--dry-run", expect=1).stderr
    for named in ("supabase_admin", "event trigger", "pg_stat_statements"):
        assert named in plain_dry, named


def test_exclusions_that_leave_dependents_warn(
    supabase_source: Any, tmp_path: Path, file_storage_config: Any
) -> None:
    from drtool.platforms import SUPABASE

    setup = make_setup(
        tmp_path / "cfg", supabase_source.dsn, supabase_source.password, file_storage_config
    )
    setup.doc.setdefault("backup", {})["exclude_schemas"] = sorted(SUPABASE.managed_schemas)
    setup.write()
    done = setup.run("backup", "--json").json
    assert any("extensions" in w for w in done["warnings"]), done["warnings"]
    manifest = setup.run("show", done["id"], "--json").json
    assert manifest["warnings"] == done["warnings"]
