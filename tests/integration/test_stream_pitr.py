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
from tests.fixtures.stream import StreamProject
from tests.fixtures.supabase import _project
from tests.integration.restore_support import checksums, user_tables

PW = {"PGPASSWORD": TEST_PASSWORD}
TABLES = [
    "auth.users",
    "auth.identities",
    "public.profiles",
    "public.contacts",
    "public.notes",
    "public.deals",
    "public.deal_events",
    "public.raw_log",
]
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
            doc = setup.run(
                "restore",
                "latest",
                "--to",
                dsn,
                "--until",
                at.isoformat(),
                "--json",
                extra_env=PW,
            ).json
            assert doc["point_in_time"]["until"].startswith(at.isoformat()[:19])
            print(doc["point_in_time"])
            assert checksums(dsn, TEST_PASSWORD, TABLES) == expected, f"point {i}"
        finally:
            fresh_project_cluster.drop_database(name)
    assert user_tables
