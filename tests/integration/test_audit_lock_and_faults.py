"""Object Lock keeps the audit records (moto S3 with a lock-enabled bucket), never the head
pointer rewritten by every append; and an audited operation when the storage fails: a trail
that cannot be read, nothing runs; a record that cannot be written, no success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drtool.catalog.records.audit import AUDIT_HEAD_KEY, AuditWriteError
from drtool.config import ObjectLockConfig, StorageConfig
from drtool.errors import StorageError, UsageError
from drtool.services.audit.trail import audited
from drtool.storage import Storage, open_storage
from drtool.storage.faults import FaultyStorage
from tests.fixtures.s3 import MotoServer
from tests.integration.audit_support import append, context, record_keys, records


def test_audit_records_are_locked_and_the_head_is_not(moto_server: MotoServer) -> None:
    bucket = moto_server.create_bucket(ObjectLockEnabledForBucket=True)
    try:
        cfg = moto_server.storage_config(
            bucket, object_lock=ObjectLockConfig(mode="governance", days=35)
        )
        append(open_storage(cfg), 3)
        client = moto_server.client()
        soon = datetime.now(UTC) + timedelta(days=35)
        keys = record_keys(open_storage(cfg))
        assert len(keys) == 3
        for key in keys:
            head = client.head_object(Bucket=bucket, Key=f"prefix/{key}")
            assert head["ObjectLockMode"] == "GOVERNANCE", key
            assert abs(head["ObjectLockRetainUntilDate"] - soon) < timedelta(hours=1), key
        versions = client.list_object_versions(Bucket=bucket, Prefix=f"prefix/{AUDIT_HEAD_KEY}")
        assert len(versions["Versions"]) == 3  # rewritten by each append, never locked
        for version in versions["Versions"]:
            head = client.head_object(
                Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"]
            )
            assert "ObjectLockRetainUntilDate" not in head
    finally:
        moto_server.empty_bucket(bucket)


class FailingConditionalWrites(FaultyStorage):
    """The real local storage, whose conditional writes fail after the first ``allowed``."""

    def __init__(self, inner: Storage, allowed: int) -> None:
        super().__init__(inner)
        self.allowed = allowed

    def put_if(self, key: str, data: bytes, *, etag: str | None) -> str | None:
        if self.allowed <= 0:
            raise StorageError(f"{self.description}: injected fault: put {key} failed")
        self.allowed -= 1
        return self.inner.put_if(key, data, etag=etag)


@pytest.fixture
def local(tmp_path: Path) -> Storage:
    return open_storage(StorageConfig(url=(tmp_path / "storage").as_uri()))


class UnreadableHead(FaultyStorage):
    def get_tagged(self, key: str) -> tuple[bytes, str]:
        raise StorageError(f"{self.description}: injected fault: get {key} failed")


def test_an_unreadable_trail_means_the_operation_does_not_run(local: Storage) -> None:
    ran = []
    with (
        pytest.raises(AuditWriteError, match="cannot be read and written"),
        audited(context(UnreadableHead(local)), "restore", items=["backup:x"]),
    ):
        ran.append(True)
    assert ran == [] and record_keys(local) == []


def test_a_trail_that_cannot_be_written_means_the_operation_does_not_run(
    local: Storage,
) -> None:
    append(local, 1)
    ran = []
    with (
        pytest.raises(AuditWriteError, match="cannot be read and written"),
        audited(context(FailingConditionalWrites(local, 0)), "restore", items=["backup:x"]),
    ):
        ran.append(True)
    assert ran == [] and len(record_keys(local)) == 1


def test_no_record_means_no_success(local: Storage) -> None:
    ran = []
    ctx = context(FailingConditionalWrites(local, 0))
    with (
        pytest.raises(AuditWriteError, match="audit write failed") as caught,
        audited(ctx, "restore", items=["backup:x"]),
    ):
        ran.append(True)
    assert caught.value.exit_code == 1
    assert ran == [True] and record_keys(local) == []


def test_a_usage_error_is_not_recorded(local: Storage) -> None:
    with (
        pytest.raises(UsageError),
        audited(context(local), "restore", items=["backup:nope"]),
    ):
        raise UsageError("no backup nope")
    assert record_keys(local) == []


def test_a_failing_operation_keeps_its_own_error_and_gets_a_failed_record(local: Storage) -> None:
    with (
        pytest.raises(StorageError, match="boom"),
        audited(context(local), "archive restore", target="db:5432/app") as entry,
    ):
        entry.add("policy:p")
        raise StorageError("boom")
    (failed,) = records(local)
    assert failed["outcome"] == "failed"
    assert failed["exit_code"] == 1 and failed["error"] == "boom"
    assert failed["items"] == ["policy:p"] and failed["target"] == "db:5432/app"
