"""Point-in-time recovery through the change stream, on the real Supabase structure as the
non-superuser ``postgres``: after a deterministic workload (inserts, updates, deletes,
multi-statement and rolled-back transactions, cascades, sequences, TRUNCATE, jsonb and enum
columns, a REPLICA IDENTITY FULL table without a primary key), ``restore --until`` each
point gives per-table checksums equal to the source's at that point."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
import pytest

from tests.fixtures.pg import TEST_PASSWORD
from tests.fixtures.stream import (
    APP_TABLES,
    StreamProject,
    fresh_target,
    restore_until,
    segment_manifests,
)
from tests.fixtures.supabase import _project
from tests.integration.restore_support import checksums, user_tables

TABLES = APP_TABLES
USER_6 = "6f1c2a0e-3b7d-4f5a-9c1e-0a1b2c3d4e06"

# Each step is one transaction (a list of statements), run as postgres.
WORKLOAD: list[list[str]] = [
    [
        "insert into public.deals (contact_id, stage, amount, details, big_note)"
        " select id, 'lead', id * 10.5, jsonb_build_object('source', 'web', 'n', id),"
        " repeat('x', 5000) from public.contacts",
        "insert into public.deal_events select id, 'created', '{\"v\": 1}', now()"
        " from public.deals",
        "insert into public.raw_log values ('deals created', now())",
    ],
    [
        "update public.deals set stage = 'qualified', details = details || '{\"q\": true}'"
        " where id % 2 = 0",
        "update public.deal_events set payload = '{\"v\": 2}' where deal_id % 3 = 0",
    ],
    ["delete from public.contacts where id = 2"],  # cascades to notes and deals
    [
        "insert into public.contacts (user_id, name, email) select user_id, 'New ' || id,"
        " 'new' || id || '@example.org' from public.contacts where id < 4",
        "update public.contacts set company = 'Renamed' where id = 1",
        "delete from public.deal_events where deal_id = 1",
    ],
    ["update public.deals set amount = null, stage = 'won' where id = 3"],
    ["truncate public.raw_log"],
    [
        "insert into public.raw_log select 'line ' || g, now() from generate_series(1, 50) g",
        "update public.deals set amount = amount + 1",  # big_note stays toasted: unchanged
    ],
]


def _run_workload(project: StreamProject) -> list[tuple[datetime, dict[str, str]]]:
    points = []
    for i, step in enumerate(WORKLOAD):
        at = project.write(*step)
        if i == 1:
            # A rolled-back transaction leaves nothing to replay.
            with pytest.raises(psycopg.errors.DivisionByZero):
                project.write("delete from public.deals", "select 1 / 0")
        points.append((at, checksums(project.db.dsn, TEST_PASSWORD, TABLES)))
    return points


def test_restore_until_each_point_equals_the_source_then(
    stream_project: StreamProject, fresh_project_cluster: Any
) -> None:
    project = stream_project
    setup = project.setup
    before = checksums(project.db.dsn, TEST_PASSWORD, TABLES)
    first = setup.run("stream", "run", "--once", "--json").json
    assert len(first["base_backups"]) == 1
    # A user signs up through GoTrue: its trigger creates the profile (a second table).
    start = project.write("select 1")
    points = [(start, before)]
    points += _run_workload(project)
    setup.run("stream", "run", "--once")
    for i in (0, 2, 3, 5, len(points) - 1):
        at, expected = points[i]
        name = f"pitr_{uuid.uuid4().hex[:8]}"
        target = _project(fresh_project_cluster, name)  # a fresh project, reached as postgres
        dsn = target.dsn
        try:
            doc = restore_until(project, dsn, at).json
            assert doc["point_in_time"]["until"].startswith(at.isoformat()[:19])
            assert checksums(dsn, TEST_PASSWORD, TABLES) == expected, f"point {i}"
        finally:
            fresh_project_cluster.drop_database(name)


def test_writes_during_the_base_backup_replay_exactly(
    stream_project: StreamProject, fresh_project_cluster: Any
) -> None:
    """The base backup's snapshot decides: transactions it saw are skipped at replay, the
    ones committing while pg_dump runs are applied. Writes run during the whole backup."""
    project = stream_project
    proc = project.setup.popen("stream", "run", "--once")
    points = []
    i = 0
    while proc.poll() is None:
        i += 1
        at = project.write(
            f"insert into public.raw_log values ('during {i}', now())",
            f"update public.deals set amount = {i} where id = (select min(id) from public.deals)",
            f"insert into public.deals (contact_id, amount) values (1, {i})",
        )
        points.append((at, checksums(project.db.dsn, TEST_PASSWORD, TABLES)))
    assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
    project.setup.run("stream", "run", "--once")
    backups = project.setup.run("list", "--json").json["items"]
    base_id = next(b["id"] for b in backups if b.get("label") == "stream base backup")
    base = project.setup.run("show", base_id, "--json").json
    snapshot = datetime.fromisoformat(base["snapshot_at"])
    finished = datetime.fromisoformat(base["finished_at"])
    during = [p for p in points if snapshot < p[0] < finished]
    assert len(during) >= 3, f"{len(during)} writes while pg_dump ran"
    for at, expected in (during[0], during[len(during) // 2], points[-1]):
        with fresh_target(fresh_project_cluster) as target:
            restore_until(project, target.dsn, at)
            assert checksums(target.dsn, TEST_PASSWORD, TABLES) == expected


def test_a_schema_change_starts_a_new_base_backup_and_bounds_the_older_one(
    stream_project: StreamProject, fresh_project_cluster: Any
) -> None:
    project = stream_project
    setup = project.setup
    project.write(*WORKLOAD[0])  # deals to change
    setup.run("stream", "run", "--once")
    before = project.write("insert into public.raw_log values ('before the change', now())")
    expected_before = checksums(project.db.dsn, TEST_PASSWORD, TABLES)
    project.write("update public.deals set amount = 1")  # the last change in the old shape
    project.write("alter table public.deals add column priority int not null default 0")
    between = project.write("update public.deals set priority = 2 where id % 2 = 0")
    run = setup.run("stream", "run", "--once", "--json").json
    assert len(run["base_backups"]) == 1, "a new base backup after the schema change"
    after = project.write("update public.deals set priority = 3 where id % 3 = 0")
    expected_after = checksums(project.db.dsn, TEST_PASSWORD, TABLES)
    setup.run("stream", "run", "--once")
    changes = [s for s in segment_manifests(setup) if s["schema_changes"]]
    assert changes and "changed table public.deals" in changes[0]["schema_changes"]
    with fresh_target(fresh_project_cluster) as target:
        restore_until(project, target.dsn, before)
        assert checksums(target.dsn, TEST_PASSWORD, TABLES) == expected_before
    with fresh_target(fresh_project_cluster) as target:
        refused = restore_until(project, target.dsn, between, expect=2)
        assert "schema changed" in refused.stderr and "public.deals" in refused.stderr
        assert [t for t in user_tables(target.dsn, TEST_PASSWORD) if "public." in t] == []
    with fresh_target(fresh_project_cluster) as target:
        restore_until(project, target.dsn, after)
        assert checksums(target.dsn, TEST_PASSWORD, TABLES) == expected_after


def test_rehearse_until_records_the_point_in_time_drill(stream_project: StreamProject) -> None:
    project = stream_project
    setup = project.setup
    setup.run("stream", "run", "--once")
    for step in WORKLOAD[:3]:
        project.write(*step)
    setup.run("stream", "run", "--once")
    drill = setup.run("rehearse", "--until", "now", "--json").json
    assert drill["verdict"] == "pass", drill["failures"]
    pit = drill["point_in_time"]
    assert pit["transactions_applied"] == 3
    tables = {t["table"]: t for t in drill["tables"]}
    deals = project.scalar("select count(*) from public.deals")
    assert tables["public.deals"]["expected"] == deals == tables["public.deals"]["actual"]
    assert drill["rpo_seconds"] < 60
