"""Object Lock keeps what a backup is made of, not the state drtool rewrites: on a lock-enabled
bucket (moto S3), a real backup's data objects and manifest carry retention, while the
scheduler's lease, the job-run records and the verification records do not. Manifests and
records are stored as application/json."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drtool.config import Config, ObjectLockConfig
from drtool.services.context import Context
from drtool.services.lease import Lease, lease_key
from drtool.storage import open_storage
from tests.fixtures.cli import make_setup
from tests.fixtures.s3 import MotoServer


def test_a_backups_objects_are_locked_and_leases_and_run_records_are_not(
    tmp_path: Path, sample_db: Any, moto_server: MotoServer
) -> None:
    bucket = moto_server.create_bucket(ObjectLockEnabledForBucket=True)
    try:
        cfg = moto_server.storage_config(
            bucket, object_lock=ObjectLockConfig(mode="governance", days=35)
        )
        setup = make_setup(tmp_path / "cfg", sample_db.dsn, sample_db.password, cfg)
        setup.doc["storage"]["object_lock"] = {"mode": "governance", "days": 35}
        setup.write()
        backup_id = setup.run("backup").stdout.strip().splitlines()[-1]
        setup.run("verify", backup_id)
        storage = open_storage(cfg)
        lease = Lease(Context(Config(storage=cfg), storage), "backup")
        assert lease.acquire() is None
        assert lease.renew()
        lease.release()

        client = moto_server.client()
        listed = client.list_objects_v2(Bucket=bucket, Prefix="prefix/")["Contents"]
        heads = {
            item["Key"].removeprefix("prefix/"): client.head_object(Bucket=bucket, Key=item["Key"])
            for item in listed
        }
        backup = [key for key in heads if key.startswith(f"backups/{backup_id}/")]
        assert f"backups/{backup_id}/manifest.json" in backup and len(backup) >= 2
        soon = datetime.now(UTC) + timedelta(days=35)
        for key in backup:
            until = heads[key].get("ObjectLockRetainUntilDate")
            assert until is not None, key
            assert abs(until - soon) < timedelta(hours=1), key
            assert heads[key]["ObjectLockMode"] == "GOVERNANCE", key
        rewritten = [lease_key("backup"), "runs/backup.json", "runs/verify.json"]
        records = [key for key in heads if key.startswith("verifications/")]
        assert records and set(rewritten) <= set(heads)
        for key in rewritten + records:
            assert "ObjectLockRetainUntilDate" not in heads[key], key
            assert "ObjectLockMode" not in heads[key], key
        # The lease was written three times (acquire, renew, release): no version is locked.
        versions = client.list_object_versions(
            Bucket=bucket, Prefix=f"prefix/{lease_key('backup')}"
        )
        assert len(versions["Versions"]) == 3
        for version in versions["Versions"]:
            head = client.head_object(
                Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"]
            )
            assert "ObjectLockRetainUntilDate" not in head

        for key in [f"backups/{backup_id}/manifest.json", *rewritten, *records]:
            assert heads[key]["ContentType"] == "application/json", key
        for key in backup:
            if not key.endswith(".json"):
                assert heads[key]["ContentType"] == "application/octet-stream", key
    finally:
        moto_server.empty_bucket(bucket)
