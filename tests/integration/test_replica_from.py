"""`--from NAME` against a lost primary: a backup and an export copied byte for byte to a
replica bucket, then the primary bucket emptied entirely; list, show, verify --deep, restore
(exact table checksums), restore-user and rehearse all work from the replica, write their
records there, and never write to the primary; archived rows come back from a replica; a
scheduled `--from` job needs nothing of the primary. An unknown replica name exits 2."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drtool.config import StorageConfig
from tests.fixtures.cli import Setup
from tests.fixtures.pg import TEST_PASSWORD
from tests.fixtures.s3 import MotoServer
from tests.integration.replica_support import (
    PREFIX,
    add_replica,
    keys,
    lose_everything,
)
from tests.integration.restore_support import (
    backup,
    checksums,
    target_password,  # noqa: F401 (autouse)
)
from tests.integration.test_archive import archive_db, archive_setup, checksum  # noqa: F401
from tests.integration.test_rehearse import assert_scratch_gone, drill_tmp, rehearse  # noqa: F401
from tests.integration.test_scheduler import Scheduler, storage_root, with_schedules


@pytest.fixture
def replica_bucket(moto_server: MotoServer) -> Iterator[str]:
    bucket = moto_server.create_bucket()
    yield bucket
    moto_server.empty_bucket(bucket)


def test_a_lost_primary_stops_nothing_with_from(
    s3_setup: Setup,
    s3_bucket: str,
    replica_bucket: str,
    moto_server: MotoServer,
    sample_db: Any,
    empty_db: Any,
    drill_tmp: Any,  # noqa: F811
) -> None:
    setup = s3_setup
    setup.env["PGPASSWORD"] = TEST_PASSWORD
    add_replica(setup, moto_server, replica_bucket)
    backup_id = backup(setup)
    heavy = sample_db.info.heavy_user_id
    export_id = setup.run("--json", "export-user", heavy).json["id"]
    manifest = setup.run("show", backup_id, "--json").json
    [behind] = setup.run("status", "--json").json["replicas"]
    assert behind["name"] == "dr" and behind["newest_id"] is None and behind["ok"] is True
    assert behind["lag_seconds"] > 0  # the primary's newest backup's age
    [replicated] = setup.run("replicate", "--json").json["replicas"]
    assert replicated["name"] == "dr" and not replicated["failed"]
    assert {backup_id, export_id} <= set(replicated["copied"])
    assert f"{PREFIX}backups/{backup_id}/manifest.json" in keys(moto_server, replica_bucket)
    caught_up = setup.run("status", "--json").json["replicas"]
    assert [(r["name"], r["newest_id"], r["lag_seconds"], r["ok"]) for r in caught_up] == [
        ("dr", backup_id, 0.0, True)
    ]
    human = setup.run("status").stdout
    assert f"replica dr: newest backup {backup_id}" in human and "lag 0s" in human

    lose_everything(moto_server, s3_bucket)
    assert setup.run("list", "--json").json["items"] == []  # the primary really is empty
    # status breaches on the primary (no backup) and still shows the replica's newest.
    lost = setup.run("status", "--json", expect=4).json
    assert any("no complete backup" in text for text in lost["breaches"])
    assert [r["newest_id"] for r in lost["replicas"]] == [backup_id]

    listed = setup.run("list", "--from", "dr", "--json").json["items"]
    assert {i["id"] for i in listed} == {backup_id, export_id}
    shown = setup.run("show", "latest", "--from", "dr", "--json").json
    assert shown["id"] == backup_id and shown["tables"] == manifest["tables"]

    verified = setup.run("verify", "--all", "--deep", "--from", "dr", "--json").json
    assert {i["id"] for i in verified["items"]} == {backup_id, export_id}
    assert all(i["ok"] and i["deep"] for i in verified["items"]), verified

    restored = setup.run("restore", "latest", "--to", empty_db.dsn, "--from", "dr", "--json").json
    assert restored["id"] == backup_id and restored["tables"] == manifest["tables"]
    tables = sorted(manifest["tables"])
    assert checksums(empty_db.dsn, TEST_PASSWORD, tables) == checksums(
        sample_db.dsn, sample_db.password, tables
    )

    # The user's rows are all there already: nothing to insert, from the replica's export.
    user = setup.run(
        "restore-user", heavy, "--from-export", export_id, "--to", empty_db.dsn,
        "--dry-run", "--from", "dr", "--json",
    ).json  # fmt: skip
    assert user["user_id"] == heavy

    drill = rehearse(setup, drill_tmp, "--from", "dr", "--json").json
    assert drill["verdict"] == "pass" and drill["backup_id"] == backup_id
    assert_scratch_gone(drill_tmp)

    # Every record went to the replica; nothing was written to the lost primary.
    assert keys(moto_server, s3_bucket) == []
    after = keys(moto_server, replica_bucket)
    for folder in ("verifications/", "restores/", "drills/", "runs/"):
        assert any(k.startswith(PREFIX + folder) for k in after), (folder, after)
    drills = setup.run("list", "--kind", "drill", "--from", "dr", "--json").json["items"]
    assert [d["id"] for d in drills] == [drill["id"]]


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["show", "latest"],
        ["verify"],
        ["restore", "latest", "--to-file", "/nonexistent/x.dump"],
        ["rehearse"],
        ["archive", "list"],
    ],
)
def test_an_unknown_replica_exits_2_naming_the_configured_ones(
    file_setup: Setup, argv: list[str]
) -> None:
    file_setup.doc["storage"]["replicas"] = [{"name": "dr", "url": "file:///nonexistent/dr"}]
    file_setup.write()
    result = file_setup.run(*argv, "--from", "nope", "--json", expect=2)
    assert result.json["exit_code"] == 2
    assert "no replica named 'nope'" in result.json["error"]["message"]
    assert "dr" in result.json["error"]["message"]


def test_a_scheduled_job_with_from_runs_on_the_replica_alone(file_setup: Setup) -> None:
    """The scheduler takes the job's lease on the replica too: a scheduled drill or verify
    from the replica needs nothing of the primary storage, which is gone here."""
    setup = file_setup
    backup_id = backup(setup)
    primary = storage_root(setup)
    replica = setup.dir / "dr-storage"
    setup.doc["storage"]["replicas"] = [{"name": "dr", "url": replica.as_uri()}]
    setup.write()
    assert backup_id in setup.run("replicate", "--json").json["replicas"][0]["copied"]
    shutil.rmtree(primary)
    with_schedules(
        setup, verify='name: verify-dr\ncron: "0 3 * * *"\ncommand: verify latest --from dr\n'
    )
    sched = Scheduler(setup, "--run-now", "verify-dr")
    try:
        done = sched.wait_for(lambda e: e.get("event") == "run", timeout=120)
        assert done["ok"] is True, sched.raw
    finally:
        assert sched.stop() == 0
    assert not primary.exists(), sorted(str(p) for p in primary.rglob("*"))
    assert (replica / "scheduler" / "verify-dr.json").exists()
    assert (replica / "runs" / "verify.json").exists()
    assert list((replica / "verifications" / backup_id).glob("*.json"))


def test_archived_rows_come_back_from_a_replica(
    tmp_path: Path,
    pg_cluster: Any,
    archive_db: str,  # noqa: F811 (the fixture)
    file_storage_config: StorageConfig,
) -> None:
    setup = archive_setup(tmp_path / "cfg", pg_cluster, archive_db, file_storage_config)
    original = checksum(pg_cluster, archive_db, "public.jobs")
    run = setup.run("archive", "run", "--policy", "finished-jobs", "--json").json
    [policy] = run["policies"]
    assert policy["archived"] > 0 and checksum(pg_cluster, archive_db, "public.jobs") != original
    primary = storage_root(setup)
    replica = tmp_path / "dr-storage"
    setup.doc["storage"]["replicas"] = [{"name": "dr", "url": replica.as_uri()}]
    setup.write()
    [replicated] = setup.run("replicate", "--json").json["replicas"]
    batches = [i["id"] for i in setup.run("archive", "list", "--json").json["items"]]
    assert batches and set(batches) <= set(replicated["copied"])
    shutil.rmtree(primary)  # the primary is lost

    listed = setup.run("archive", "list", "--from", "dr", "--json").json["items"]
    assert sum(i["rows"] for i in listed if i["kind"] == "archive") == policy["archived"]
    setup.run(
        "archive", "restore", "--policy", "finished-jobs", "--to", pg_cluster.dsn(archive_db),
        "--from", "dr", "--json",
    )  # fmt: skip
    assert checksum(pg_cluster, archive_db, "public.jobs") == original
    assert not primary.exists()
