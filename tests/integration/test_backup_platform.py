"""Platform detection at backup, on a Supabase-shaped cluster of its own (the platform's roles
are cluster-wide, so the shared test cluster stays self-managed): superuser
``supabase_admin``, the application's non-superuser ``postgres``, ``auth`` and ``storage``
owned by platform roles. The backup runs as ``postgres`` and records the platform, its schema
versions and its data tables' columns; a version table the role may not read is ``None``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from drtool.config import StorageConfig
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.conn import Target, parse_target
from drtool.pg.dump.snapshot import open_snapshot
from drtool.pg.platform.detect import detect
from drtool.platforms import SUPABASE
from tests.fixtures.cli import make_setup
from tests.fixtures.pg import TEST_PASSWORD, require_initdb

ROLES = f"""
create role authenticator noinherit nologin;
create role supabase_auth_admin nologin;
create role supabase_storage_admin nologin;
create role postgres login createdb createrole bypassrls password '{TEST_PASSWORD}';
"""

PLATFORM_SCHEMAS = """
create schema auth authorization supabase_auth_admin;
create schema storage authorization supabase_storage_admin;
create table auth.schema_migrations (version varchar(255) primary key);
insert into auth.schema_migrations
  values ('20171026211738'), ('20240612123726'), ('20221003041349');
create table auth.users (
  instance_id uuid, id uuid primary key, email varchar(255), encrypted_password varchar(255),
  created_at timestamptz
);
create table auth.identities (
  provider_id text, user_id uuid not null references auth.users, provider text,
  primary key (provider, provider_id)
);
create table storage.migrations (id integer primary key, name varchar(100) unique);
-- 42 is the newest: compared as text, '9' would win.
insert into storage.migrations values (0, 'create-migrations-table'), (9, 'nine'), (42, 'latest');
create table storage.buckets (id text primary key, name text not null);
alter table auth.schema_migrations owner to supabase_auth_admin;
alter table auth.users owner to supabase_auth_admin;
alter table auth.identities owner to supabase_auth_admin;
alter table storage.migrations owner to supabase_storage_admin;
alter table storage.buckets owner to supabase_storage_admin;
grant usage on schema auth, storage to postgres;
grant select on all tables in schema auth, storage to postgres;
insert into auth.users (id, email) values ('9b2f0a3c-2d7e-4f4c-9a51-6d0f3c1b7a10', 'a@example.com');
create table public.profiles (
  id uuid primary key references auth.users, name text
);
alter table public.profiles owner to postgres;
insert into public.profiles values ('9b2f0a3c-2d7e-4f4c-9a51-6d0f3c1b7a10', 'A');
"""

USERS_COLUMNS = ["instance_id", "id", "email", "encrypted_password", "created_at"]


@pytest.fixture(scope="module")
def supabase_cluster() -> Iterator[EphemeralCluster]:
    require_initdb()
    cluster = EphemeralCluster(superuser="supabase_admin", password=TEST_PASSWORD)
    cluster.start()
    try:
        with cluster.connect() as conn:
            conn.execute(ROLES)
        yield cluster
    finally:
        cluster.stop()


def _database(cluster: EphemeralCluster, name: str, setup: str | None = PLATFORM_SCHEMAS) -> Target:
    """A database owned by ``postgres`` with the platform's schemas; the target as postgres."""
    cluster.create_database(name)
    with cluster.connect() as conn:
        conn.execute(f'alter database "{name}" owner to postgres')
    if setup:
        with cluster.connect(name) as conn:
            conn.execute(setup)
    return parse_target(cluster.dsn(name, user="postgres"), TEST_PASSWORD)


def test_backup_as_the_platform_role_records_supabase_and_its_facts(
    tmp_path: Path, supabase_cluster: EphemeralCluster, file_storage_config: StorageConfig
) -> None:
    _database(supabase_cluster, "project")
    setup = make_setup(
        tmp_path / "cfg",
        supabase_cluster.dsn("project", user="postgres"),
        TEST_PASSWORD,
        file_storage_config,
    )
    doc = setup.run("backup", "--json").json
    assert doc["platform"] == "supabase"
    details = doc["platform_details"]
    assert details["schema_versions"] == {"auth": "20240612123726", "storage": "42"}
    # Only the platform's data tables that exist, each with its columns in order.
    assert details["data_tables"] == {
        "auth.users": USERS_COLUMNS,
        "auth.identities": ["provider_id", "user_id", "provider"],
        "storage.buckets": ["id", "name"],
    }
    assert doc["warnings"] == []
    # Detection ran in the snapshot without disturbing it: the counts are exact.
    assert doc["tables"]["auth.users"] == 1 and doc["tables"]["public.profiles"] == 1
    shown = setup.run("show", doc["id"]).stdout
    assert "platform:    supabase (schema versions: auth 20240612123726, storage 42)" in shown
    assert "auth.users" in shown and "5 columns" in shown
    setup.run("verify", doc["id"], "--deep")


def test_version_tables_the_role_may_not_read_are_unknown_not_fatal(
    supabase_cluster: EphemeralCluster,
) -> None:
    target = _database(supabase_cluster, "locked")
    with supabase_cluster.connect("locked") as conn:
        conn.execute("revoke select on storage.migrations from postgres")
        conn.execute("revoke usage on schema auth from postgres")
    # In a backup snapshot, as the backup reads it: the snapshot stays usable afterwards.
    with open_snapshot(target, [], timedelta(seconds=10)) as snap:
        facts = snap.inspect(detect, "detecting the hosting platform")
        tables = [t for t in snap.tables if t.qualified == "public.profiles"]
        assert snap.count_rows(tables) == {"public.profiles": 1}
    assert facts is not None and facts.platform is SUPABASE
    assert facts.schema_versions == {"auth": None, "storage": None}
    # Column names come from the catalogs, which every role may read.
    assert facts.data_tables["auth.users"] == USERS_COLUMNS


def test_a_platform_database_without_its_schemas(supabase_cluster: EphemeralCluster) -> None:
    facts = detect(_database(supabase_cluster, "bare", setup=None))
    assert facts is not None and facts.name == "supabase"
    assert facts.schema_versions == {"auth": None, "storage": None}
    assert facts.data_tables == {}
    assert facts.details() == {
        "schema_versions": {"auth": None, "storage": None},
        "data_tables": {},
    }


def test_self_managed_postgresql_is_no_platform() -> None:
    require_initdb()
    with EphemeralCluster(password=TEST_PASSWORD) as plain:
        plain.create_database("plain")
        assert detect(parse_target(plain.dsn("plain"), TEST_PASSWORD)) is None
