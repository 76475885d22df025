"""Restore end to end through the CLI: real PostgreSQL, local storage. Round trips keep every
table's content and the schema's RLS, roles, grants, sequences, types and keys; refusals
change nothing; spool files never outlive a restore."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drtool.crypto.keys import parse_identity_file
from drtool.errors import UsageError
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.conn import parse_target
from drtool.pg.restore.target import inspect_target, require_major
from drtool.services.restore.spool import write_spool
from drtool.storage import open_storage
from tests.fixtures.cli import Setup
from tests.fixtures.pg import TEST_PASSWORD, require_initdb
from tests.integration.restore_support import (
    backup,
    checksums,
    connect,
    read_manifest,
    restore_records,
    scalar,
    target_password,  # noqa: F401 (autouse)
    user_tables,
    with_password,
)


def assert_same_content(
    source: Any, target_dsn: str, tables: list[str], password: str = TEST_PASSWORD
) -> None:
    assert checksums(target_dsn, password, tables) == checksums(source.dsn, source.password, tables)


def _fixed_path_scalar(dsn: str, password: str, query: str) -> Any:
    with connect(dsn, password) as conn:
        conn.execute("set search_path = pg_catalog")
        row = conn.execute(query).fetchone()  # type: ignore[call-overload]
        assert row is not None
        return row[0]


def test_round_trip_keeps_contents_rls_roles_grants_sequences_types_and_keys(
    file_setup: Setup, sample_db: Any, empty_db: Any
) -> None:
    backup_id = backup(file_setup)
    manifest = read_manifest(file_setup, backup_id)
    to = empty_db.dsn
    out = file_setup.run("restore", backup_id, "--to", to, "--json")
    doc = out.json
    assert doc["ok"] is True and doc["id"] == backup_id
    assert doc["target"].endswith(f"/{empty_db.name}") and doc["seconds"] > 0
    assert doc["tables"] == manifest["tables"]
    tables = sorted(manifest["tables"])
    assert user_tables(empty_db.dsn, TEST_PASSWORD) == tables
    assert_same_content(sample_db, empty_db.dsn, tables)
    dsn, pw = empty_db.dsn, TEST_PASSWORD
    # Row-level security: enabled on the same tables, the same policies.
    rls = "select count(*) from pg_class where relrowsecurity"
    assert scalar(dsn, pw, rls) == scalar(sample_db.dsn, pw, rls) > 0
    policies = (
        "select string_agg(concat_ws(':', tablename, policyname, roles::text, qual, with_check),"
        " ',' order by tablename, policyname) from pg_policies"
    )
    # Deparsed expressions depend on the session's search_path, which differs per role.
    assert _fixed_path_scalar(dsn, pw, policies) == _fixed_path_scalar(sample_db.dsn, pw, policies)
    # Roles and grants.
    assert scalar(
        dsn, pw, "select has_table_privilege('authenticated', 'public.contacts', 'SELECT')"
    )
    assert scalar(dsn, pw, "select has_table_privilege('service_role', 'public.jobs', 'DELETE')")
    grants = "select has_table_privilege('anon', 'public.contacts', 'SELECT')"
    assert scalar(dsn, pw, grants) == scalar(sample_db.dsn, pw, grants)
    # Sequences continue after the restored ids.
    assert scalar(dsn, pw, "select nextval('public.interactions_id_seq')") > scalar(
        dsn, pw, "select max(id) from public.interactions"
    )
    # Enum type, generated column, composite primary key.
    labels = (
        "select string_agg(enumlabel, ',' order by enumtypid::regtype::text, enumsortorder)"
        " from pg_enum"
    )
    assert _fixed_path_scalar(dsn, pw, labels) == _fixed_path_scalar(sample_db.dsn, pw, labels)
    generated = (
        "select attgenerated from pg_attribute"
        " where attrelid = 'public.contacts'::regclass and attname = 'full_name'"
    )
    assert scalar(dsn, pw, generated) == "s"
    assert (
        scalar(
            dsn,
            pw,
            "select count(*) from public.contacts"
            " where full_name <> first_name || ' ' || last_name",
        )
        == 0
    )
    pk = (
        "select string_agg(a.attname, ',' order by k.ord) from pg_constraint c"
        " cross join unnest(c.conkey) with ordinality k(attnum, ord)"
        " join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum"
        " where c.conrelid = 'public.user_integrations'::regclass and c.contype = 'p'"
    )
    assert scalar(dsn, pw, pk) == "user_id,provider"
    # The measured duration is recorded.
    [record] = restore_records(file_setup, backup_id)
    assert record["ok"] is True and record["seconds"] > 0 and "restore" in record["stages"]
    assert record["target"] == doc["target"] and record["tables"] == manifest["tables"]


def test_restore_from_each_backend(any_setup: Setup, sample_db: Any, empty_db: Any) -> None:
    backup_id = backup(any_setup)
    manifest = any_setup.run("show", backup_id, "--json").json
    to = empty_db.dsn
    doc = any_setup.run("restore", backup_id, "--to", to, "--json").json
    assert doc["tables"] == manifest["tables"]
    assert_same_content(sample_db, empty_db.dsn, sorted(doc["tables"]))


def test_latest_restores_the_newest_backup(
    file_setup: Setup, sample_db: Any, empty_db: Any
) -> None:
    backup(file_setup)
    newest = backup(file_setup)
    out = file_setup.run("restore", "latest", "--to", empty_db.dsn, "--json")
    assert out.json["id"] == newest


def test_non_empty_target_is_refused_without_force_and_unchanged(
    file_setup: Setup, sample_db: Any, empty_db: Any
) -> None:
    backup_id = backup(file_setup)
    to = empty_db.dsn
    file_setup.run("restore", backup_id, "--to", to, "-q")
    with connect(empty_db.dsn, TEST_PASSWORD) as conn:
        conn.execute("create table public.keep_me (note text)")
        conn.execute("insert into public.keep_me values ('operator data')")
        conn.execute("update public.contacts set notes = 'changed' where ctid = '(0,1)'")
    before = checksums(empty_db.dsn, TEST_PASSWORD, ["public.contacts", "public.keep_me"])
    refused = file_setup.run("restore", backup_id, "--to", to, expect=5)
    assert "--force" in refused.stderr and "not empty" in refused.stderr
    after = checksums(empty_db.dsn, TEST_PASSWORD, ["public.contacts", "public.keep_me"])
    assert after == before
    # --force replaces the backup's objects and leaves the others alone.
    forced = file_setup.run("restore", backup_id, "--to", to, "--force", "--json")
    tables = sorted(read_manifest(file_setup, backup_id)["tables"])
    assert forced.json["tables"] == read_manifest(file_setup, backup_id)["tables"]
    assert_same_content(sample_db, empty_db.dsn, tables)
    assert scalar(empty_db.dsn, TEST_PASSWORD, "select note from public.keep_me") == (
        "operator data"
    )


def test_jobs_2_round_trip_through_a_spool_file_that_is_removed(
    file_setup: Setup, sample_db: Any, empty_db: Any, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    file_setup.doc["restore"] = {"spool_dir": str(spool)}
    file_setup.write()
    backup_id = backup(file_setup)
    to = empty_db.dsn
    doc = file_setup.run("restore", backup_id, "--to", to, "--jobs", "2", "--json").json
    assert doc["plan"]["mode"] == "spool" and doc["plan"]["jobs"] == 2
    assert "fetch_decrypt" in doc["stages"]
    tables = sorted(doc["tables"])
    assert_same_content(sample_db, empty_db.dsn, tables)
    assert list(spool.iterdir()) == []


def test_spool_file_is_private_and_complete(file_setup: Setup, tmp_path: Path) -> None:
    backup_id = backup(file_setup)
    entry = next(o for o in read_manifest(file_setup, backup_id)["objects"] if o["name"] == "dump")
    from drtool.catalog.manifest import ObjectEntry
    from drtool.config import StorageConfig

    storage = open_storage(StorageConfig(url=file_setup.doc["storage"]["url"]), file_setup.dir)
    path = write_spool(
        storage,
        ObjectEntry(**entry).stored(),
        parse_identity_file(file_setup.identity_path),
        tmp_path,
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_size == entry["plain_size"]


def test_to_file_writes_a_verified_dump_pg_restore_reads_and_never_overwrites(
    file_setup: Setup, tmp_path: Path
) -> None:
    backup_id = backup(file_setup)
    out_file = tmp_path / "out" / "backup.pgdump"
    out_file.parent.mkdir()
    doc = file_setup.run("restore", backup_id, "--to-file", str(out_file), "--json").json
    assert doc["id"] == backup_id and doc["target"] == str(out_file)
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    listing = subprocess.run(
        ["pg_restore", "--list", str(out_file)], capture_output=True, text=True, check=True
    )
    assert "TABLE DATA public contacts" in listing.stdout
    assert [p.name for p in out_file.parent.iterdir()] == ["backup.pgdump"]
    again = file_setup.run("restore", backup_id, "--to-file", str(out_file), expect=2)
    assert "already exists" in again.stderr


def test_dry_run_prints_the_plan_and_changes_nothing(file_setup: Setup, empty_db: Any) -> None:
    backup_id = backup(file_setup)
    to = empty_db.dsn
    out = file_setup.run("restore", backup_id, "--to", to, "--dry-run")
    assert "dry run" in out.stdout and "target now:  empty" in out.stdout
    assert "roles:" in out.stdout and "extensions:" in out.stdout
    assert user_tables(empty_db.dsn, TEST_PASSWORD) == []
    assert restore_records(file_setup, backup_id) == []


def test_data_only_needs_empty_tables_unless_force(
    file_setup: Setup, sample_db: Any, empty_db: Any
) -> None:
    backup_id = backup(file_setup)
    to = empty_db.dsn
    schema = file_setup.run("restore", backup_id, "--to", to, "--schema-only", "--json").json
    assert set(schema["tables"].values()) == {0}
    file_setup.run("restore", backup_id, "--to", to, "--data-only", "-q")
    tables = sorted(read_manifest(file_setup, backup_id)["tables"])
    assert_same_content(sample_db, empty_db.dsn, tables)
    refused = file_setup.run("restore", backup_id, "--to", to, "--data-only", expect=5)
    assert "--force" in refused.stderr
    with connect(empty_db.dsn, TEST_PASSWORD) as conn:
        conn.execute("delete from public.sessions where ctid = '(0,1)'")
    doc = file_setup.run("restore", backup_id, "--to", to, "--data-only", "--force", "--json").json
    assert doc["tables"] == read_manifest(file_setup, backup_id)["tables"]
    assert_same_content(sample_db, empty_db.dsn, tables)


def test_one_table_reload_with_data_only_force(
    file_setup: Setup, sample_db: Any, empty_db: Any
) -> None:
    backup_id = backup(file_setup)
    to = empty_db.dsn
    file_setup.run("restore", backup_id, "--to", to, "-q")
    with connect(empty_db.dsn, TEST_PASSWORD) as conn:
        conn.execute("delete from public.raw_events where id % 2 = 0")
    doc = file_setup.run(
        "restore",
        backup_id,
        "--to",
        to,
        "--table",
        "raw_events",
        "--data-only",
        "--force",
        "--json",
    ).json
    assert list(doc["tables"]) == ["public.raw_events"]
    assert_same_content(sample_db, empty_db.dsn, ["public.raw_events"])
    unknown = file_setup.run("restore", backup_id, "--to", to, "--table", "nope", expect=2)
    assert "no such table" in unknown.stderr


def test_option_conflicts_are_usage_errors(file_setup: Setup, tmp_path: Path) -> None:
    backup_id = backup(file_setup)
    dsn = "postgresql://nobody@127.0.0.1:1/x"
    for args in (
        ["--to", dsn, "--schema-only", "--data-only"],
        ["--to", dsn, "--to-file", str(tmp_path / "x")],
        [],
        ["--to-file", str(tmp_path / "x"), "--table", "contacts"],
    ):
        file_setup.run("restore", backup_id, *args, expect=2)
    assert (
        "no complete backup"
        in file_setup.run("restore", "20200101T000000.000Z-0000", "--to", dsn, expect=2).stderr
    )


def test_target_on_an_older_major_is_refused(empty_db: Any) -> None:
    state = inspect_target(parse_target(empty_db.dsn, empty_db.password))
    require_major(state, state.server_major)
    with pytest.raises(UsageError) as err:
        require_major(state, 99)
    assert f"is PostgreSQL {state.server_major}, the backup is from 99" in err.value.message
    assert "restore into 99 or newer" in err.value.message


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[EphemeralCluster]:
    """A second cluster without the sample's roles (roles are per cluster)."""
    require_initdb()
    with EphemeralCluster(password=TEST_PASSWORD) as cluster:
        yield cluster


def test_missing_roles_are_created_from_the_stored_globals(
    file_setup: Setup, sample_db: Any, fresh_cluster: EphemeralCluster
) -> None:
    backup_id = backup(file_setup)
    dsn = fresh_cluster.create_database("restored")
    doc = file_setup.run("restore", backup_id, "--to", dsn, "--json").json
    # The API roles and the platform's own (supabase_admin, a superuser, owns the auth schema).
    assert {"anon", "authenticated", "service_role", "supabase_admin"} <= set(doc["roles_created"])
    assert scalar(
        dsn, TEST_PASSWORD, "select rolsuper from pg_roles where rolname = 'supabase_admin'"
    )
    attrs = (
        "select string_agg(rolname || ':' || rolcanlogin || ':' || rolbypassrls, ','"
        " order by rolname) from pg_roles where rolname in ('anon', 'authenticated',"
        " 'service_role')"
    )
    assert scalar(dsn, TEST_PASSWORD, attrs) == (
        "anon:false:false,authenticated:false:false,service_role:false:true"
    )
    assert scalar(
        dsn,
        TEST_PASSWORD,
        "select has_table_privilege('authenticated', 'public.contacts', 'UPDATE')",
    )
    assert_same_content(sample_db, dsn, sorted(doc["tables"]))


def test_roles_that_cannot_be_created_are_named_with_the_no_owner_fallback(
    file_setup: Setup, sample_db: Any, fresh_cluster: EphemeralCluster
) -> None:
    backup_id = backup(file_setup)
    with fresh_cluster.connect() as conn:
        conn.execute("create role restorer login password 'restorer-pw' nocreaterole")
        conn.execute("create database owned owner restorer")
    dsn = fresh_cluster.dsn("owned", user="restorer")
    to = with_password(dsn, "restorer-pw")
    # The DSN's own password wins over PGPASSWORD, and is never shown.
    refused = file_setup.run("restore", backup_id, "--to", to, expect=1)
    assert "restorer-pw" not in refused.stdout + refused.stderr
    for name in ("anon", "authenticated", "service_role", "--no-owner"):
        assert name in refused.stderr
    assert user_tables(dsn, "restorer-pw") == []
    # --no-owner skips ownership only: the grants still name the API roles.
    grants = file_setup.run("restore", backup_id, "--to", to, "--no-owner", expect=1)
    assert "anon" in grants.stderr and "--no-privileges" in grants.stderr
    # --no-privileges skips grants too; RLS policies still name `authenticated`.
    bare = ("--no-owner", "--no-privileges")
    still = file_setup.run("restore", backup_id, "--to", to, *bare, expect=1)
    assert "authenticated" in still.stderr and "anon" not in still.stderr
    with fresh_cluster.connect() as conn:
        conn.execute("create role authenticated nologin")
    # What is left needs a superuser whatever the flags: the platform's event triggers and an
    # untrusted extension. Named, with how to resolve them; nothing changed, nothing recorded.
    left = file_setup.run("restore", backup_id, "--to", to, *bare, expect=1)
    assert "restorer-pw" not in left.stdout + left.stderr
    assert "2 obstacle(s)" in left.stderr and "pgrst_ddl_watch" in left.stderr
    assert "pg_stat_statements" in left.stderr and "restore as a superuser" in left.stderr
    assert user_tables(dsn, "restorer-pw") == []
    assert restore_records(file_setup, backup_id) == []


def test_pgpassword_is_honoured_for_the_target(file_setup: Setup, empty_db: Any) -> None:
    backup_id = backup(file_setup)
    file_setup.run(
        "restore", backup_id, "--to", empty_db.dsn, "-q", extra_env={"PGPASSWORD": TEST_PASSWORD}
    )
    assert len(user_tables(empty_db.dsn, TEST_PASSWORD)) > 0


def test_a_failed_restore_drops_the_roles_it_created(
    file_setup: Setup, fresh_cluster: EphemeralCluster
) -> None:
    backup_id = backup(file_setup)
    dsn = fresh_cluster.create_database("clash")
    roles = (
        "select count(*) from pg_roles where rolname in ('anon', 'authenticated', 'service_role')"
    )
    with connect(dsn, TEST_PASSWORD) as conn:
        conn.execute("create schema auth")  # not a table: the target counts as empty
    # A clash known beforehand is an obstacle of the plan: nothing is created at all.
    clash = file_setup.run("restore", backup_id, "--to", dsn, expect=1)
    assert "schema auth" in clash.stderr and "--force" in clash.stderr
    assert scalar(dsn, TEST_PASSWORD, roles) == 0
    assert restore_records(file_setup, backup_id) == []
    # One the plan cannot know: the target refuses the restore's DDL midway.
    with connect(dsn, TEST_PASSWORD) as conn:
        conn.execute("drop schema auth")
        conn.execute(
            "create function public.refuse() returns event_trigger language plpgsql as"
            " $$ begin raise exception 'no tables today'; end $$"
        )
        conn.execute(
            "create event trigger refuse on ddl_command_start when tag in ('CREATE TABLE')"
            " execute function public.refuse()"
        )
    failed = file_setup.run("restore", backup_id, "--to", dsn, expect=1)
    assert "no tables today" in failed.stderr
    assert user_tables(dsn, TEST_PASSWORD) == []
    assert scalar(dsn, TEST_PASSWORD, roles) == 0
    [record] = restore_records(file_setup, backup_id)
    assert record["ok"] is False and "no tables today" in record["error"]
