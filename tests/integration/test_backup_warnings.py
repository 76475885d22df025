"""A backup whose exclusions leave objects that need what is excluded is never silently ok: it
warns (result, manifest, log, human output), names both objects, and still exits 0 with a
verifiable backup. Real PostgreSQL, the real CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drtool.config import StorageConfig
from drtool.platforms import SUPABASE
from tests.fixtures.cli import Setup, make_setup

SCHEMA = """
create schema ext;
create extension citext with schema ext;

create schema platform;
create function platform.current_tenant() returns int language sql stable as 'select 1';
create function platform.on_ddl() returns event_trigger language plpgsql as 'begin end';
create event trigger watch_ddl on ddl_command_end execute function platform.on_ddl();
create table platform.tenants (id int primary key);
insert into platform.tenants values (1);

create table public.notes (
  id int primary key,
  tenant_id int not null default platform.current_tenant() references platform.tenants,
  email ext.citext
);
alter table public.notes enable row level security;
create policy tenant_isolation on public.notes using (tenant_id = platform.current_tenant());
insert into public.notes values (1, 1, 'a@example.com');

create table public.embeddings (id int primary key, vector text);
insert into public.embeddings values (1, '[0.1, 0.2]');
create table public.chunks (id int primary key, embedding_id int references public.embeddings);
insert into public.chunks values (1, 1);
create table public.empty_refs (id int primary key, embedding_id int references public.embeddings);
"""


@pytest.fixture
def dep_setup(tmp_path: Path, empty_db: Any, file_storage_config: StorageConfig) -> Setup:
    with empty_db.connect() as conn:
        conn.execute(SCHEMA)
    return make_setup(tmp_path / "cfg", empty_db.dsn, empty_db.password, file_storage_config)


def _one(warnings: list[str], *needles: str) -> str:
    found = [w for w in warnings if all(n in w for n in needles)]
    assert len(found) == 1, f"expected one warning naming {needles}, got {warnings}"
    return found[0]


def test_exclusions_that_break_a_restore_warn_naming_both_objects(dep_setup: Setup) -> None:
    dep_setup.doc["backup"] = {
        "exclude_schemas": ["ext", "plat*"],  # a glob, as pg_dump reads it
        "exclude_table_data": ["public.embeddings"],
    }
    dep_setup.write()
    result = dep_setup.run("backup", "--json")  # exit 0
    doc = result.json
    warnings = doc["warnings"]
    assert all(w.startswith("restore will fail: ") for w in warnings)

    # The extension created in the excluded schema: pg_dump still emits CREATE EXTENSION.
    _one(warnings, "extension citext is installed in schema ext")
    # A kept column of a type from that extension.
    _one(warnings, "schema public need schema ext", "column email of table public.notes", "citext")
    # Default, policy and foreign key on a kept table, all needing the excluded schema.
    platform = _one(warnings, "schema public need schema platform")
    assert (
        "default value for column tenant_id of table public.notes uses function "
        "platform.current_tenant()" in platform
    )
    assert (
        "policy tenant_isolation on table public.notes uses function platform.current_tenant()"
        in platform
    )
    assert "on table public.notes references table platform.tenants" in platform
    # Event triggers belong to no schema: pg_dump writes them whatever it excludes.
    database = _one(warnings, "database-wide objects need schema platform")
    assert "event trigger watch_ddl uses function platform.on_ddl()" in database
    # Rows that reference rows left out by exclude_table_data; an empty table cannot break.
    data = _one(warnings, "exclude_table_data")
    assert "rows of public.chunks reference public.embeddings" in data
    assert "chunks_embedding_id_fkey" in data
    assert "empty_refs" not in data
    assert len(warnings) == 5

    # The manifest records them; the log has a WARNING each.
    shown = dep_setup.run("show", doc["id"], "--json").json
    assert shown["warnings"] == warnings
    # The test cluster is shaped like Supabase's (its roles are cluster-wide).
    assert shown["platform"] == "supabase"
    assert result.stderr.count("WARNING") >= len(warnings)
    # And the backup is intact.
    dep_setup.run("verify", doc["id"])
    dep_setup.run("verify", doc["id"], "--deep")


def test_human_output_prints_the_warnings_and_keeps_the_id_last(dep_setup: Setup) -> None:
    dep_setup.doc["backup"] = {"exclude_schemas": ["ext"]}
    dep_setup.write()
    result = dep_setup.run("backup")  # exit 0
    lines = result.stdout.strip().splitlines()
    assert any(line.startswith("warning: restore will fail: extension citext") for line in lines), (
        result.stdout
    )
    backup_id = lines[-1]
    assert backup_id.count("-") == 1 and not backup_id.startswith("warning")
    shown = dep_setup.run("show", backup_id).stdout
    assert "warning:     restore will fail: extension citext" in shown
    assert "platform:    supabase" in shown


def test_no_exclusions_no_warnings(dep_setup: Setup) -> None:
    doc = dep_setup.run("backup", "--json").json
    assert doc["warnings"] == []
    assert "WARNING" not in dep_setup.run("backup").stderr


def test_harmless_exclusions_do_not_warn(dep_setup: Setup, empty_db: Any) -> None:
    with empty_db.connect() as conn:
        conn.execute(
            "create schema scratchpad; create table scratchpad.tmp (id int references "
            "public.notes); create table public.audit (id int primary key)"
        )
    dep_setup.doc["backup"] = {
        "exclude_schemas": ["scratchpad"],  # depends on kept objects, nothing depends on it
        "exclude_table_data": ["public.audit"],  # nothing references it
    }
    dep_setup.write()
    assert dep_setup.run("backup", "--json").json["warnings"] == []


def test_excluding_supabase_internal_schemas_names_the_extensions_the_app_uses(
    tmp_path: Path, empty_db: Any, file_storage_config: StorageConfig
) -> None:
    with empty_db.connect() as conn:
        conn.execute(
            """
            create schema extensions;
            create extension "uuid-ossp" with schema extensions;
            create extension citext with schema extensions;
            create table public.profiles (
              id uuid primary key default extensions.uuid_generate_v4(),
              email extensions.citext not null
            );
            insert into public.profiles (email) values ('a@example.com');
            """
        )
    setup = make_setup(tmp_path / "cfg", empty_db.dsn, empty_db.password, file_storage_config)
    setup.doc["backup"] = {"exclude_schemas": sorted(SUPABASE.managed_schemas)}
    setup.write()
    warnings = setup.run("backup", "--json").json["warnings"]
    _one(warnings, "extensions citext, uuid-ossp are installed in schema extensions")
    uses = _one(warnings, "objects in schema public need schema extensions")
    assert 'function extensions.uuid_generate_v4() (extension "uuid-ossp")' in uses
    assert "column email of table public.profiles uses type extensions.citext" in uses
