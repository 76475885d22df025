"""Every sensitive operation of the SPEC list, run through the real CLI against real
PostgreSQL, appends its audit record with the SPEC fields, also when it fails (a usage error,
exit 2, changes nothing and records nothing); the chain stays linear and verifies; no
password reaches any record; with an unreadable trail the operation does not start."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drtool.config import StorageConfig
from drtool.pg.cluster.ephemeral import EphemeralCluster
from tests.fixtures.cli import Setup
from tests.fixtures.pg import TEST_PASSWORD
from tests.integration.audit_support import SPEC_FIELDS
from tests.integration.export_helpers import copy_database
from tests.integration.test_archive import archive_setup


@pytest.fixture
def source_db(pg_cluster: EphemeralCluster, sample_db: Any) -> Iterator[str]:
    name, _dsn = copy_database(pg_cluster, "sample")
    try:
        yield name
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture
def setup(
    tmp_path: Path, pg_cluster: EphemeralCluster, source_db: str, file_storage_config: StorageConfig
) -> Setup:
    s = archive_setup(tmp_path / "cfg", pg_cluster, source_db, file_storage_config)
    s.doc["retention"] = {
        "keep_last": 1,
        "keep_daily": 0,
        "keep_weekly": 0,
        "keep_monthly": 0,
        "keep_yearly": 0,
    }
    s.write()
    return s


def trail(setup: Setup) -> list[dict[str, Any]]:
    """The records, oldest first."""
    return list(reversed(setup.run("--json", "audit").json["records"]))


def of(setup: Setup, command: str) -> list[dict[str, Any]]:
    """The records of ``command``, oldest first, each with the SPEC fields."""
    records = [r for r in trail(setup) if r["command"] == command]
    for r in records:
        assert set(r) >= SPEC_FIELDS, r
        assert set(r["actor"]) >= {"os_user", "host", "db_user"} and r["actor"]["os_user"]
        assert r["outcome"] in ("succeeded", "failed") and r["started_at"] <= r["at"]
    return records


def test_every_sensitive_operation_appends_its_records(
    setup: Setup, pg_cluster: EphemeralCluster, empty_db: Any, sample_db: Any, tmp_path: Path
) -> None:
    user = sample_db.info.heavy_user_id
    first = setup.run("backup").stdout.strip().splitlines()[-1]
    setup.run("verify", first)
    assert trail(setup) == []  # a backup and a shallow verify decrypt nothing, change nothing

    setup.run("verify", first, "--deep")
    (done,) = of(setup, "verify --deep")
    assert done["items"] == [f"backup:{first}"] and done["exit_code"] == 0

    # restore: the target named without its password, even when the DSN carries one
    with_password = empty_db.dsn.replace("@", f":{TEST_PASSWORD}@", 1)
    setup.run("restore", first, "--to", with_password)
    setup.run("restore", "latest", "--to", empty_db.dsn, expect=5)  # refused: not empty
    ok, refused = of(setup, "restore")
    assert ok["items"] == [f"backup:{first}"] and ok["outcome"] == "succeeded"
    host_db = f"127.0.0.1:{pg_cluster.port}/{empty_db.name}"
    assert ok["target"] == f"supabase_admin@{host_db}", ok["target"]
    assert refused["outcome"] == "failed" and refused["exit_code"] == 5
    assert refused["items"] == ["backup:latest"]  # as asked: it failed before resolving
    assert "not empty" in refused["error"]

    export = setup.run("--json", "export-user", user).json["id"]
    out = tmp_path / "subject.tar"
    setup.run("export-user", user, "--out", str(out))
    stored, handed = of(setup, "export-user")
    assert stored["items"] == [f"user:{user}", f"export:{export}"]
    assert handed["items"] == [f"user:{user}"] and handed["target"] == f"file:{out}"

    setup.run("export-users", "--all")
    (many,) = of(setup, "export-users")
    assert f"user:{user}" in many["items"] and many["detail"]["exported"] >= 1

    setup.run("restore-user", user, "--from-export", export, "--to", empty_db.dsn)
    (back,) = of(setup, "restore-user")
    assert back["items"] == [f"user:{user}", f"export:{export}"]
    assert back["target"] == f"supabase_admin@{host_db}" and back["outcome"] == "succeeded"

    run = setup.run("--json", "archive", "run").json
    (archived,) = of(setup, "archive run")
    deleted = {p["name"]: p["deleted"] for p in run["policies"]}
    assert archived["detail"]["deleted"] == deleted and sum(deleted.values()) > 0
    setup.run("archive", "run", "--dry-run")
    assert len(of(setup, "archive run")) == 1  # a dry run deletes nothing: not audited

    setup.run("archive", "restore", "--policy", "old-raw-events", "--to", empty_db.dsn)
    (put_back,) = of(setup, "archive restore")
    assert put_back["items"][0] == "policy:old-raw-events" and len(put_back["items"]) > 1
    assert put_back["detail"]["rows"] > 0

    setup.run("backup")
    setup.run("backup")
    setup.run("prune", "--dry-run")
    assert [r for r in trail(setup) if r["command"] == "prune"] == []
    removed = [e["id"] for e in setup.run("--json", "prune").json["removed"]]
    (pruned,) = of(setup, "prune")
    assert removed and pruned["items"] == [f"backup:{i}" for i in removed]

    setup.run("rehearse", first)
    (drill,) = of(setup, "rehearse")
    assert drill["items"][0] == f"backup:{first}" and drill["items"][1].startswith("drill:")

    records = trail(setup)
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert setup.run("--json", "audit", "--verify").json["ok"] is True
    mine = setup.run("--json", "audit", "--user", user).json["records"]
    assert {r["command"] for r in mine} == {"export-user", "export-users", "restore-user"}
    assert setup.run("--json", "audit", "--since", "1h").json["records"][0]["seq"] == len(records)
    human = setup.run("audit").stdout
    assert "restore-user: succeeded" in human and "restore: failed (exit 5)" in human

    # No password in any stored record (nor the head), nor in the listing.
    storage = Path(setup.doc["storage"]["url"].removeprefix("file://"))
    stored_bytes = b"".join(p.read_bytes() for p in (storage / "audit").rglob("*.json"))
    assert TEST_PASSWORD.encode() not in stored_bytes
    assert TEST_PASSWORD not in setup.run("--json", "audit").stdout + human


def test_a_failed_restore_user_gets_its_record_and_a_usage_error_none(
    setup: Setup, sample_db: Any, pg_cluster: EphemeralCluster
) -> None:
    user = sample_db.info.heavy_user_id
    export = setup.run("--json", "export-user", user).json["id"]
    setup.run(
        "restore-user",
        user,
        "--from-export",
        "20261126T021500.123Z-7f3a",
        "--to",
        sample_db.dsn,
        expect=2,
    )  # unknown export: exit 2, nothing changed
    assert of(setup, "restore-user") == []
    gone = pg_cluster.dsn("no_such_database")
    failed = setup.run("restore-user", user, "--from-export", export, "--to", gone, expect=1)
    (record,) = of(setup, "restore-user")
    assert record["outcome"] == "failed" and record["exit_code"] == 1
    assert record["items"] == [f"user:{user}", f"export:{export}"]
    assert record["target"] == f"supabase_admin@127.0.0.1:{pg_cluster.port}/no_such_database"
    assert record["error"] and record["error"] in failed.stderr


def test_an_operation_whose_record_cannot_be_written_does_not_start(
    setup: Setup, sample_db: Any
) -> None:
    storage = Path(setup.doc["storage"]["url"].removeprefix("file://"))
    (storage / "audit").mkdir(parents=True)
    (storage / "audit" / "head.json").write_bytes(b"damaged")  # the trail cannot be appended to
    out = setup.dir / "handed-out.zip"
    for args in (
        ("export-user", sample_db.info.heavy_user_id),
        ("export-user", sample_db.info.heavy_user_id, "--out", str(out)),
    ):
        result = setup.run("--json", *args, expect=1)
        assert "audit write failed" in result.json["error"]["message"]
    assert not out.exists()  # nothing handed out without its record
    assert not (storage / "exports").exists()  # nothing exported without its record
    assert json.loads(setup.run("--json", "list").stdout)["items"] == []
