"""Other managed platforms get the same mechanism (SPEC "Managed PostgreSQL"): a cluster
shaped like RDS, Cloud SQL, Azure or Neon, whose bootstrap superuser is the platform's own
and whose admin role (``rds_superuser``, ...) owns a schema; drtool connects as the
application's non-superuser role. Backup, drill and restore work, and the platform is named.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.platforms import PLATFORMS, SUPABASE, Platform
from tests.fixtures.cli import Setup, make_setup
from tests.fixtures.pg import TEST_PASSWORD, require_initdb
from tests.integration.restore_support import backup, checksums, connect, scalar

OTHERS = [p for p in PLATFORMS if p is not SUPABASE]
APP_PASSWORD = "app-pw-not-a-secret"


# The platform's own superuser, and the admin role its customers' role is a member of.
BOOTSTRAP = {
    "rds": "rdsadmin",
    "cloudsql": "cloudsqladmin",
    "azure": "azuresu",
    "neon": "cloud_admin",
}
ADMIN = {
    "rds": "rds_superuser",
    "cloudsql": "cloudsqlsuperuser",
    "azure": "azure_pg_admin",
    "neon": "neon_superuser",
}


def _bootstrap(platform: Platform) -> str:
    return BOOTSTRAP[platform.name]


@pytest.fixture(params=OTHERS, ids=[p.name for p in OTHERS])
def managed(request: pytest.FixtureRequest) -> Iterator[tuple[Platform, EphemeralCluster, str]]:
    """A cluster of the platform: its roles, an admin role owning schema ``managed``, the
    application role ``app`` (not a superuser, a member of the admin role as on the
    platforms) owning database ``appdb`` with its tables."""
    platform: Platform = request.param
    require_initdb()
    with EphemeralCluster(superuser=_bootstrap(platform), password=TEST_PASSWORD) as cluster:
        with cluster.connect() as conn:
            for role in sorted(platform.platform_roles - {_bootstrap(platform)}):
                conn.execute(f'create role "{role}" nologin')
            admin = ADMIN[platform.name]
            conn.execute(
                f"create role app login password '{APP_PASSWORD}' createdb createrole"
                f' in role "{admin}"'
            )
            conn.execute("create database appdb owner app")
        admin = ADMIN[platform.name]
        with cluster.connect("appdb") as conn:
            conn.execute(f'create schema managed authorization "{admin}"')
            conn.execute("create table managed.settings (k text primary key, v text)")
            conn.execute(f'alter table managed.settings owner to "{admin}"')
            conn.execute("insert into managed.settings values ('a', '1'), ('b', '2')")
            conn.execute("grant usage on schema managed to app")
            conn.execute("grant select on managed.settings to app")
        dsn = cluster.dsn("appdb", user="app")
        with connect(dsn, APP_PASSWORD) as conn:
            conn.execute(
                "create table public.notes (id bigint generated always as identity primary key,"
                " user_id uuid not null, body text)"
            )
            conn.execute(
                "insert into public.notes (user_id, body) select gen_random_uuid(), 'n' || g"
                " from generate_series(1, 50) g"
            )
        yield platform, cluster, dsn


def _setup(tmp_path: Path, dsn: str, storage: Any) -> Setup:
    return make_setup(tmp_path / "cfg", dsn, APP_PASSWORD, storage)


def test_admin_role_owning_a_schema_backs_up_drills_and_restores(
    managed: tuple[Platform, EphemeralCluster, str],
    tmp_path: Path,
    file_storage_config: Any,
) -> None:
    platform, cluster, dsn = managed
    setup = _setup(tmp_path, dsn, file_storage_config)
    assert not scalar(dsn, APP_PASSWORD, "select rolsuper from pg_roles where rolname = 'app'")
    backup_id = backup(setup)
    manifest = setup.run("show", backup_id, "--json").json
    assert manifest.get("platform") == platform.name
    assert manifest["tables"]["managed.settings"] == 2
    # The drill's own cluster gets the platform's admin role (created from the globals).
    drill = setup.run("rehearse", backup_id, "--json", expect=None)
    assert drill.code == 0, drill.stderr
    assert drill.json["verdict"] == "pass"
    # Into another database of the platform as the application role: the admin role exists
    # there and app is its member, so owners are kept.
    with cluster.connect() as conn:
        conn.execute("create database copy owner app")
    to = cluster.dsn("copy", user="app")
    setup.run("restore", backup_id, "--to", to, "-q", extra_env={"PGPASSWORD": APP_PASSWORD})
    tables = ["managed.settings", "public.notes"]
    assert checksums(to, APP_PASSWORD, tables) == checksums(dsn, APP_PASSWORD, tables)
    owner = "select nspowner::regrole::text from pg_namespace where nspname = 'managed'"
    assert scalar(to, APP_PASSWORD, owner) == scalar(dsn, APP_PASSWORD, owner)
    # A role outside the platform's admin role may not take the admin's ownerships: the dry
    # run names that with its resolution, and --no-owner restores it owned by that role, with
    # the grants (to app) kept.
    with cluster.connect() as conn:
        conn.execute(f"create role outsider login password '{APP_PASSWORD}'")
        conn.execute("create database theirs owner outsider")
    theirs = cluster.dsn("theirs", user="outsider")
    pw = {"PGPASSWORD": APP_PASSWORD}
    dry = setup.run("restore", backup_id, "--to", theirs, "--dry-run", expect=1, extra_env=pw)
    assert "--no-owner" in dry.stderr and ADMIN[platform.name] in dry.stderr
    setup.run("restore", backup_id, "--to", theirs, "--no-owner", "-q", extra_env=pw)
    assert scalar(theirs, APP_PASSWORD, owner) == "outsider"
    assert checksums(theirs, APP_PASSWORD, tables) == checksums(dsn, APP_PASSWORD, tables)
    grant = "select has_table_privilege('app', 'managed.settings', 'SELECT')"
    assert scalar(theirs, APP_PASSWORD, grant) is True
