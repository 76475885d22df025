"""Object Lock end to end on replicas: after backup + verify + replicate between two
lock-enabled buckets on one S3 endpoint (a server-side copy), the data objects and manifests
carry retention on the primary and on the replica; records that are rewritten or are checks
(job-run records, verification records) carry none on either."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drtool.config import ObjectLockConfig
from tests.fixtures.cli import make_setup
from tests.fixtures.s3 import MotoServer
from tests.integration.replicate_support import add_replica


def heads(moto: MotoServer, bucket: str) -> dict[str, Any]:
    client = moto.client()
    listed = client.list_objects_v2(Bucket=bucket, Prefix="prefix/").get("Contents", [])
    return {
        item["Key"].removeprefix("prefix/"): client.head_object(Bucket=bucket, Key=item["Key"])
        for item in listed
    }


def test_replicated_items_are_locked_on_the_replica_and_records_are_not(
    tmp_path: Path, sample_db: Any, moto_server: MotoServer
) -> None:
    lock = ObjectLockConfig(mode="governance", days=35)
    buckets = [moto_server.create_bucket(ObjectLockEnabledForBucket=True) for _ in range(2)]
    try:
        primary_cfg = moto_server.storage_config(buckets[0], object_lock=lock)
        replica_cfg = moto_server.storage_config(buckets[1], object_lock=lock)
        setup = make_setup(tmp_path / "cfg", sample_db.dsn, sample_db.password, primary_cfg)
        setup.doc["storage"]["object_lock"] = {"mode": "governance", "days": 35}
        add_replica(setup, "dr", replica_cfg, object_lock={"mode": "governance", "days": 35})
        backup_id = setup.run("backup").stdout.strip().splitlines()[-1]
        setup.run("verify", backup_id)
        result = setup.run("--json", "replicate").json["replicas"][0]
        assert result["copied"] and result["failed"] == [] and result["server_side"] is True

        soon = datetime.now(UTC) + timedelta(days=35)
        on_primary, on_replica = heads(moto_server, buckets[0]), heads(moto_server, buckets[1])
        backup = [k for k in on_primary if k.startswith(f"backups/{backup_id}/")]
        assert f"backups/{backup_id}/manifest.json" in backup and len(backup) >= 2
        records = [k for k in on_primary if k.startswith("verifications/")]
        assert records and set(records) <= set(on_replica)
        for where in (on_primary, on_replica):
            for key in backup:
                assert where[key]["ObjectLockMode"] == "GOVERNANCE", key
                assert abs(where[key]["ObjectLockRetainUntilDate"] - soon) < timedelta(hours=1)
            for key in records:
                assert "ObjectLockRetainUntilDate" not in where[key], key
                assert where[key]["ContentType"] == "application/json", key
        assert "runs/replicate.dr.json" in on_primary
        assert "ObjectLockRetainUntilDate" not in on_primary["runs/replicate.dr.json"]
        assert not any(k.startswith("runs/") for k in on_replica)
        # Bytes unchanged: the replica's manifest is the primary's, byte for byte.
        client = moto_server.client()
        key = f"prefix/backups/{backup_id}/manifest.json"
        bodies = [client.get_object(Bucket=b, Key=key)["Body"].read() for b in buckets]
        assert bodies[0] == bodies[1]
    finally:
        for bucket in buckets:
            moto_server.empty_bucket(bucket)
