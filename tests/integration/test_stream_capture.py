"""What ``stream run`` publishes on the real Supabase structure, as the non-superuser
``postgres``: never breaking the application (tables without a replica identity are published
for INSERT/TRUNCATE only, now and when created later, so the application's UPDATE and DELETE
on them keep working), naming what cannot be replayed or captured, and sequences that let the
application go on after a point-in-time restore."""

from __future__ import annotations

import signal
import time
import uuid
from typing import Any

import psycopg

from drtool.config import StorageConfig
from drtool.pg.sample.supabase_layer import APP_ROLE, install_supabase_platform
from tests.fixtures.cli import make_setup
from tests.fixtures.pg import TEST_PASSWORD
from tests.fixtures.stream import (
    APP_TABLES,
    PW,
    StreamProject,
    drop_project,
    fresh_target,
    restore_until,
    segment_manifests,
)
from tests.integration.restore_support import checksums


def _publications(project: StreamProject) -> dict[str, set[str]]:
    with project.cluster.connect(project.db.name) as conn:
        rows = conn.execute(
            "select pubname, schemaname || '.' || tablename from pg_publication_tables"
            " where pubname like 'drtool%'"
        ).fetchall()
    out: dict[str, set[str]] = {}
    for pub, table in rows:
        out.setdefault(str(pub), set()).add(str(table))
    return out


def _wait_published(project: StreamProject, publication: str, table: str) -> None:
    deadline = time.monotonic() + 60
    while table not in _publications(project).get(publication, set()):
        assert time.monotonic() < deadline, f"{table} was not published in {publication}"
        time.sleep(0.2)


def test_tables_without_replica_identity_keep_working_and_are_named(
    stream_project: StreamProject,
) -> None:
    project = stream_project
    setup = project.setup
    proc = setup.popen("stream", "run")
    try:
        _wait_published(project, "drtool_inserts", "public.raw_log")
        pubs = _publications(project)
        assert "public.deals" in pubs["drtool"] and "public.deal_events" in pubs["drtool"]
        assert "public.raw_log" not in pubs["drtool"]
        # The application's UPDATE and DELETE on a table without a replica identity: fine.
        project.write("insert into public.raw_log values ('a', now()), ('b', now())")
        project.write("update public.raw_log set line = 'c' where line = 'a'")
        project.write("delete from public.raw_log where line = 'b'")
        # A table created later, without a primary key: the next cycle publishes its
        # INSERT/TRUNCATE only, and the application's UPDATE/DELETE keep working.
        project.write("create table public.audit_trail (what text)")
        _wait_published(project, "drtool_inserts", "public.audit_trail")
        project.write("insert into public.audit_trail values ('x')")
        project.write("update public.audit_trail set what = 'y'")
        project.write("delete from public.audit_trail")
        # A new table with a primary key is published whole.
        project.write("create table public.tags (id int primary key, name text)")
        _wait_published(project, "drtool", "public.tags")
        status = setup.run("stream", "status", "--json").json
        assert "public.raw_log" in status["not_replayable"]
        assert "public.audit_trail" in status["not_replayable"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "public.raw_log" in err and "REPLICA IDENTITY" in err
    changes = [c for s in segment_manifests(setup) for c in s["schema_changes"]]
    assert "new table public.audit_trail" in changes and "new table public.tags" in changes


def test_after_a_point_in_time_restore_the_application_goes_on(
    stream_project: StreamProject, fresh_project_cluster: Any
) -> None:
    """Sequences are set from the values stored with the segment: new rows get new ids."""
    project = stream_project
    setup = project.setup
    setup.run("stream", "run", "--once")
    project.write(
        "insert into public.deals (contact_id, amount) select id, 1 from public.contacts",
        "insert into public.contacts (user_id, name) select user_id, 'more' from public.contacts",
    )
    at = project.write("insert into public.deals (contact_id, amount) values (1, 2)")
    expected = checksums(project.db.dsn, TEST_PASSWORD, APP_TABLES)
    setup.run("stream", "run", "--once")
    with fresh_target(fresh_project_cluster) as target:
        doc = restore_until(project, target.dsn, at).json
        assert doc["point_in_time"]["sequences_set"] >= 2
        assert checksums(target.dsn, TEST_PASSWORD, APP_TABLES) == expected
        with psycopg.connect(target.dsn, password=TEST_PASSWORD, autocommit=True) as conn:
            conn.execute("insert into public.deals (contact_id, amount) values (1, 3)")
            conn.execute(
                "insert into public.contacts (user_id, name)"
                " select user_id, 'after' from public.contacts limit 1"
            )


def test_tables_the_role_cannot_publish_are_named_and_said_at_restore(
    logical_cluster: Any, tmp_path: Any, fresh_project_cluster: Any
) -> None:
    """Newer Supabase images: postgres is no member of supabase_auth_admin, so it cannot add
    auth.users to a publication. The stream says so at start and a restore --until says
    those tables are as in the base backup."""
    name = f"omni_{uuid.uuid4().hex[:10]}"
    again = f"omni_{uuid.uuid4().hex[:10]}"
    try:
        dsn = logical_cluster.create_database(name)
        install_supabase_platform(dsn, TEST_PASSWORD, admin_memberships=False)
        db_dsn = logical_cluster.dsn(name, user=APP_ROLE)
        storage = StorageConfig(url=(tmp_path / "storage").as_uri())
        setup = make_setup(tmp_path / "cfg", db_dsn, TEST_PASSWORD, storage)
        setup.doc["stream"] = {"enabled": True}
        setup.write()
        with psycopg.connect(db_dsn, password=TEST_PASSWORD, autocommit=True) as conn:
            conn.execute("create table public.items (id int primary key, name text)")
        run = setup.run("stream", "run", "--once", "--json").json
        named = " ".join(run["warnings"])
        assert "auth.users" in named and "storage.objects" in named
        with psycopg.connect(db_dsn, password=TEST_PASSWORD, autocommit=True) as conn:
            conn.execute("insert into public.items values (1, 'one')")
            at = conn.execute("select clock_timestamp()").fetchone()[0]  # type: ignore[index]
        setup.run("stream", "run", "--once")
        with fresh_target(fresh_project_cluster) as target:
            doc = setup.run(
                "restore",
                "latest",
                "--to",
                target.dsn,
                "--until",
                at.isoformat(),
                "--json",
                extra_env=PW,
            ).json
            warnings = " ".join(doc["point_in_time"]["warnings"])
            assert "not captured" in warnings and "auth.users" in warnings
            assert doc["point_in_time"]["transactions_applied"] == 1
    finally:
        # Memberships are cluster-wide: put the PostgreSQL 15 state back for other tests.
        install_supabase_platform(logical_cluster.create_database(again), TEST_PASSWORD)
        drop_project(logical_cluster, name)
        logical_cluster.drop_database(again)


def test_the_html_report_shows_the_stream(stream_project: StreamProject, tmp_path: Any) -> None:
    project = stream_project
    setup = project.setup
    setup.run("stream", "run", "--once")
    project.write("insert into public.raw_log values ('reported', now())")
    setup.run("stream", "run", "--once")
    out = tmp_path / "report.html"
    setup.run("report", "--out", str(out))
    html = out.read_text(encoding="utf-8")
    section = html[html.index('<section id="stream">') :]
    assert "every change stored before" in section
    newest = segment_manifests(setup)[-1]["id"]
    assert newest in section and "public.raw_log" in section  # INSERT/TRUNCATE only
    assert 'data-chart="stream"' in section or "<svg" in section
