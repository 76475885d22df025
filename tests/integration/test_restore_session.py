"""A restore talks to its target through one session: the plan (lock, facts, every check,
the platform) opens exactly one connection, and the real run adds only pg_restore's (or
psql's) own. Counted by PostgreSQL itself (``pg_stat_database.sessions``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from drtool.config import StorageConfig
from drtool.pg.cluster.ephemeral import EphemeralCluster
from tests.fixtures.cli import Setup, make_setup
from tests.fixtures.pg import TEST_PASSWORD
from tests.integration.restore_support import (
    backup,
    target_password,  # noqa: F401 (autouse)
)

SETTLE_TIMEOUT_S = 30.0


def sessions(cluster: EphemeralCluster, dbname: str) -> int:
    """Client sessions ever opened to ``dbname``, once every one of them has ended (a backend
    reports its session to the statistics before it leaves pg_stat_activity). Read from
    another database, so reading does not count."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    with cluster.connect("postgres") as conn:
        while True:
            row = conn.execute(
                "select count(*) from pg_stat_activity"
                " where datname = %s and backend_type = 'client backend'",
                (dbname,),
            ).fetchone()
            assert row is not None
            if row[0] == 0:
                break
            assert time.monotonic() < deadline, f"sessions to {dbname} did not end"
            time.sleep(0.05)
        conn.execute("select pg_stat_clear_snapshot()")
        row = conn.execute(
            "select sessions from pg_stat_database where datname = %s", (dbname,)
        ).fetchone()
        assert row is not None
        return int(row[0])


def test_restore_plan_opens_exactly_one_session_to_the_target(
    file_setup: Setup, sample_db: Any, empty_db: Any
) -> None:
    backup_id = backup(file_setup)
    cluster = empty_db.cluster
    before = sessions(cluster, empty_db.name)
    dry = file_setup.run("restore", backup_id, "--to", empty_db.dsn, "--dry-run", "--json").json
    assert dry["ok"] is True and dry["dry_run"] is True
    # The lock, the target's facts, the platform, the checks of platform tables: one session.
    assert sessions(cluster, empty_db.name) - before == 1

    before = sessions(cluster, empty_db.name)
    doc = file_setup.run("restore", backup_id, "--to", empty_db.dsn, "--json").json
    assert doc["ok"] is True and doc["tables"]
    # The restore's own session (plan, roles, counts) and the one of the process that runs
    # the dump's SQL (pg_restore --single-transaction, or psql in the script mode).
    assert sessions(cluster, empty_db.name) - before == 2


def test_fresh_project_plan_opens_exactly_one_session_to_the_project(
    supabase_source: Any, fresh_project: Any, tmp_path: Path
) -> None:
    """Into a fresh Supabase project the plan also detects the platform and checks its data
    tables: still through the one session."""
    storage = StorageConfig(url=(tmp_path / "storage").as_uri())
    setup = make_setup(tmp_path / "cfg", supabase_source.dsn, supabase_source.password, storage)
    backup_id = backup(setup)
    cluster = fresh_project.cluster
    before = sessions(cluster, fresh_project.name)
    dry = setup.run(
        "restore",
        backup_id,
        "--to",
        fresh_project.dsn,
        "--dry-run",
        "--json",
        extra_env={"PGPASSWORD": TEST_PASSWORD},
    ).json
    assert dry["plan"]["platform"] == "supabase" and "auth.users" in dry["plan"]["staged"]
    assert sessions(cluster, fresh_project.name) - before == 1
