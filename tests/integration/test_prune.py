"""`prune` through the real CLI against real PostgreSQL and real storage (local and moto S3):
retention with safety keeps, --dry-run, records of removed items, leftovers of killed runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from drtool.catalog.records.verifications import VerificationRecord, write_verification
from drtool.config import Config
from drtool.ids import new_id
from drtool.storage import open_storage
from drtool.storage.base import Storage
from tests.fixtures.cli import Setup, make_setup
from tests.fixtures.s3 import MotoServer

ZERO = {"keep_last": 0, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_yearly": 0}


def storage_of(setup: Setup) -> Storage:
    doc = {**setup.doc, "storage": dict(setup.doc["storage"]), "base_dir": setup.dir}
    if "AWS_ACCESS_KEY_ID" in setup.env:
        doc["storage"]["access_key_id"] = setup.env["AWS_ACCESS_KEY_ID"]
        doc["storage"]["secret_access_key"] = setup.env["AWS_SECRET_ACCESS_KEY"]
    cfg = Config.model_validate(doc)
    return open_storage(cfg.storage, setup.dir)


def retention(setup: Setup, **values: Any) -> None:
    setup.doc["retention"] = {**ZERO, **values}
    setup.write()


def backups(setup: Setup, n: int) -> list[str]:
    """``n`` backups, oldest first."""
    return [setup.run("backup").stdout.strip().splitlines()[-1] for _ in range(n)]


def listed(setup: Setup) -> list[str]:
    return [item["id"] for item in setup.run("list", "--json").json["items"]]


def objects(storage: Storage) -> dict[str, int]:
    """Every stored object but the job-run records (every run, dry or not, records itself)."""
    return {i.key: i.size for i in storage.list("") if not i.key.startswith("runs/")}


def failed_record(storage: Storage, item_id: str) -> str:
    record = VerificationRecord(
        id=new_id(),
        item_id=item_id,
        kind="backup",
        at=datetime.now(UTC),
        deep=False,
        ok=False,
        seconds=0.1,
        bytes=0,
        tool_version="test",
    )
    return write_verification(storage, record)


def test_prune_keeps_the_newest_and_removes_the_rest(file_setup: Setup) -> None:
    ids = backups(file_setup, 3)
    retention(file_setup, keep_last=1)
    out = file_setup.run("prune", "--json").json
    assert out["dry_run"] is False
    assert sorted(e["id"] for e in out["removed"]) == sorted(ids[:2])
    assert [e["id"] for e in out["kept"]] == [ids[2]]
    assert "newest backup" in out["kept"][0]["reason"]
    assert listed(file_setup) == [ids[2]]
    storage = storage_of(file_setup)
    assert not [
        i.key for i in storage.list("backups/") if not i.key.startswith(f"backups/{ids[2]}/")
    ]
    text = file_setup.run("prune").stdout
    assert "removed 0 item(s)" in text and ids[2] in text


def test_prune_dry_run_changes_nothing_and_lists_what_would_go(file_setup: Setup) -> None:
    ids = backups(file_setup, 3)
    retention(file_setup, keep_last=1, abandoned_after="0s")
    storage = storage_of(file_setup)
    storage.put_bytes(f"backups/{new_id()}/dump.pgdump.zst.age", b"partial")
    before = objects(storage)
    dry = file_setup.run("prune", "--dry-run", "--json").json
    assert dry["dry_run"] is True
    assert objects(storage) == before
    assert listed(file_setup) == list(reversed(ids))
    assert dry["abandoned_removed"] == 1
    assert all(e["reason"] for e in dry["removed"] + dry["kept"])
    text = file_setup.run("prune", "--dry-run").stdout
    assert "would remove 2 item(s)" in text
    real = file_setup.run("prune", "--json").json
    assert real["removed"] == dry["removed"] and real["kept"] == dry["kept"]
    assert real["abandoned_removed"] == 1
    assert listed(file_setup) == [ids[2]]


def test_newest_verified_backup_and_records_of_kept_items_survive(file_setup: Setup) -> None:
    oldest, middle, newest = backups(file_setup, 3)
    file_setup.run("verify", oldest)
    storage = storage_of(file_setup)
    middle_record = failed_record(storage, middle)  # a failed verify does not make it "verified"
    storage.put_bytes(f"restores/{middle}/{new_id()}.json", b"{}")
    storage.put_bytes(f"restores/{oldest}/{new_id()}.json", b"{}")
    drill = f"drills/{new_id()}.json"
    storage.put_bytes(drill, b'{"backup_id": "%s"}' % middle.encode())
    kept_records = {
        k: v for k, v in objects(storage).items() if k.startswith(f"verifications/{oldest}/")
    }
    assert kept_records
    retention(file_setup)
    out = file_setup.run("prune", "--json").json
    assert [e["id"] for e in out["removed"]] == [middle]
    reasons = {e["id"]: e["reason"] for e in out["kept"]}
    assert reasons == {newest: "newest backup", oldest: "newest verified backup"}
    assert listed(file_setup) == [newest, oldest]
    after = objects(storage)
    assert {k: v for k, v in after.items() if k.startswith(f"verifications/{oldest}/")} == (
        kept_records
    )
    assert middle_record not in after
    assert not [k for k in after if k.startswith(f"restores/{middle}/")]
    assert [k for k in after if k.startswith(f"restores/{oldest}/")]
    assert drill in after


def test_partial_items_go_only_once_older_than_abandoned_after(file_setup: Setup) -> None:
    storage = storage_of(file_setup)
    partial = f"backups/{new_id()}/dump.pgdump.zst.age"
    storage.put_bytes(partial, b"left by a killed backup")
    out = file_setup.run("prune", "--json").json  # default abandoned_after: 6h
    assert out["abandoned_removed"] == 0 and storage.exists(partial)
    retention(file_setup, abandoned_after="0s")
    out = file_setup.run("prune", "--json").json
    assert out["abandoned_removed"] == 1 and not storage.exists(partial)
    assert out["removed"] == [] and out["kept"] == []


def test_abandoned_multipart_upload_is_aborted(
    s3_setup: Setup, moto_server: MotoServer, s3_bucket: str
) -> None:
    (backup_id,) = backups(s3_setup, 1)
    client = moto_server.client()
    key = f"prefix/backups/{new_id()}/dump.pgdump.zst.age"
    client.create_multipart_upload(Bucket=s3_bucket, Key=key)

    def uploads() -> list[str]:
        return [
            u["Key"] for u in client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
        ]

    # moto reports every upload as started in 2010, so it is older than the default 6h.
    dry = s3_setup.run("prune", "--dry-run", "--json").json
    assert dry["abandoned_removed"] == 1 and uploads() == [key]
    out = s3_setup.run("prune", "--json").json
    assert out["abandoned_removed"] == 1 and uploads() == []
    assert [e["id"] for e in out["kept"]] == [backup_id] and out["removed"] == []
    assert listed(s3_setup) == [backup_id]


def test_items_under_object_lock_are_kept_and_said_so(
    tmp_path: Any, sample_db: Any, moto_server: MotoServer
) -> None:
    bucket = moto_server.create_bucket(ObjectLockEnabledForBucket=True)
    try:
        cfg = moto_server.storage_config(bucket)
        setup = make_setup(tmp_path / "cfg", sample_db.dsn, sample_db.password, cfg)
        setup.doc["storage"]["object_lock"] = {"mode": "governance", "days": 1}
        setup.write()
        older, newest = backups(setup, 2)
        retention(setup)
        out = setup.run("prune", "--json").json
        assert out["removed"] == []
        reasons = {e["id"]: e["reason"] for e in out["kept"]}
        assert reasons[newest] == "newest backup"
        assert reasons[older].startswith("object lock until ")
        assert listed(setup) == [newest, older]
    finally:
        moto_server.empty_bucket(bucket)


@pytest.mark.parametrize("flag", [[], ["--dry-run"]])
def test_prune_of_an_empty_storage_succeeds(file_setup: Setup, flag: list[str]) -> None:
    out = file_setup.run("prune", *flag, "--json").json
    assert out == {
        "removed": [],
        "kept": [],
        "abandoned_removed": 0,
        "dry_run": bool(flag),
        "abandoned": [],
        "replicas": [],
    }
