"""Change segments in storage: retention removes only what no kept backup can replay with (a
point-in-time restore from the kept backup stays exact), killed runs' leftovers are pruned,
and replicas get the segments so a recovery works ``--from`` a replica."""

from __future__ import annotations

import time
from typing import Any

from tests.fixtures.pg import TEST_PASSWORD
from tests.fixtures.stream import (
    APP_TABLES,
    StreamProject,
    fresh_target,
    restore_until,
    segment_manifests,
    storage_root,
)
from tests.integration.restore_support import checksums


def _segments_over_two_bases(project: StreamProject) -> None:
    setup = project.setup
    setup.run("stream", "run", "--once")  # base backup 1
    for i in range(3):
        project.write(f"insert into public.raw_log values ('first {i}', now())")
        setup.run("stream", "run", "--once")
    setup.run("backup", "--label", "nightly")  # base backup 2 (any backup is one)
    for i in range(2):
        project.write(f"insert into public.raw_log values ('second {i}', now())")
        setup.run("stream", "run", "--once")


def test_prune_removes_only_segments_no_kept_backup_needs(
    stream_project: StreamProject, fresh_project_cluster: Any
) -> None:
    project = stream_project
    setup = project.setup
    _segments_over_two_bases(project)
    before = segment_manifests(setup)
    assert len(before) == 5
    # Leftovers of a killed run: a segment folder without a manifest.
    leftover = storage_root(setup) / "streams" / "drtool" / "segments" / "20200101T000000.000Z-dead"
    leftover.mkdir()
    (leftover / "changes.pgoutput.zst.age").write_bytes(b"partial")
    setup.doc["retention"] = {
        "keep_last": 1,
        "keep_daily": 0,
        "keep_weekly": 0,
        "keep_monthly": 0,
        "keep_yearly": 0,
        "abandoned_after": "0s",
    }
    setup.write()
    result = setup.run("prune", "--json").json
    removed = {e["id"] for e in result["removed"] if e["kind"] == "segment"}
    after = segment_manifests(setup)
    assert removed and len(after) == len(before) - len(removed)
    # The newest backup's position needs the segment holding it and the one before it.
    assert {s["id"] for s in after} >= {s["id"] for s in before[-3:]}
    assert not leftover.exists()
    setup.run("verify", "--stream")
    at = project.write("select 1")
    expected = checksums(project.db.dsn, TEST_PASSWORD, APP_TABLES)
    setup.run("stream", "run", "--once")
    with fresh_target(fresh_project_cluster) as target:
        restore_until(project, target.dsn, at)
        assert checksums(target.dsn, TEST_PASSWORD, APP_TABLES) == expected


def test_replicate_copies_segments_and_recovery_works_from_the_replica(
    stream_project: StreamProject, fresh_project_cluster: Any, tmp_path: Any
) -> None:
    project = stream_project
    setup = project.setup
    setup.run("stream", "run", "--once")
    project.write("insert into public.raw_log values ('replicated', now())")
    at = project.write("update public.contacts set company = 'DR' where id = 1")
    expected = checksums(project.db.dsn, TEST_PASSWORD, APP_TABLES)
    setup.run("stream", "run", "--once")
    setup.doc["storage"]["replicas"] = [{"name": "dr", "url": (tmp_path / "dr").as_uri()}]
    setup.write()
    copied = setup.run("replicate", "--json").json
    ids = {c for r in copied["replicas"] for c in r["copied"]}
    assert {s["id"] for s in segment_manifests(setup)} <= ids
    with fresh_target(fresh_project_cluster) as target:
        doc = restore_until(project, target.dsn, at, "--from", "dr").json
        assert doc["point_in_time"]["transactions_applied"] == 2
        assert checksums(target.dsn, TEST_PASSWORD, APP_TABLES) == expected


def test_a_base_backup_every_base_backup_every(stream_project: StreamProject) -> None:
    project = stream_project
    setup = project.setup
    setup.doc["stream"]["base_backup_every"] = "1h"
    setup.write()
    first = setup.run("stream", "run", "--once", "--json").json
    assert len(first["base_backups"]) == 1  # the chain's first
    again = setup.run("stream", "run", "--once", "--json").json
    assert again["base_backups"] == []  # the first is younger than 1h
    setup.doc["stream"]["base_backup_every"] = "1s"
    setup.write()
    time.sleep(1.1)  # now the first is older than 1s
    later = setup.run("stream", "run", "--once", "--json").json
    assert len(later["base_backups"]) == 1
    labels = [b.get("label") for b in setup.run("list", "--json").json["items"]]
    assert labels.count("stream base backup") == 2
