"""S3-only guarantees: equal-sized parts, the part limit, bounded memory, client settings,
abandoned uploads, unreachable endpoints, ranged and resumed reads (moto_server)."""

from __future__ import annotations

import random
import socket
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from drtool.config import ObjectLockConfig, StorageConfig
from drtool.errors import NotFoundInStorage, StorageError
from drtool.storage.s3 import S3Storage
from tests.fixtures.proxy import FaultProxy
from tests.fixtures.s3 import TEST_PART_SIZE_BYTES, MotoServer

PART = TEST_PART_SIZE_BYTES
MiB = 1024 * 1024


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def chunks_of(data: bytes, size: int = 700_001) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def with_settings(cfg: StorageConfig, **changes: Any) -> StorageConfig:
    return cfg.model_copy(update=changes)


def record_requests(storage: S3Storage) -> list[tuple[str, dict[str, str]]]:
    """(operation, headers) of every request the storage's client sends from now on."""
    seen: list[tuple[str, dict[str, str]]] = []

    def hook(request: Any, **kwargs: Any) -> None:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else str(v)
            for k, v in request.headers.items()
        }
        seen.append((operation, headers))

    storage.client.meta.events.register("before-send.s3.*", hook)
    return seen


def test_non_final_parts_are_exactly_part_size(
    s3_storage_config: StorageConfig, moto_server: MotoServer, s3_bucket: str
) -> None:
    storage = S3Storage(s3_storage_config)
    client = moto_server.client()
    data = payload(3 * PART + 12_345)
    in_progress: list[int] = []

    def producer() -> Iterator[bytes]:
        yield from chunks_of(data[: 3 * PART])
        # Three full parts are submitted: read them back from the server before finishing.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            uploads = client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
            if uploads:
                upload = uploads[0]
                parts = client.list_parts(
                    Bucket=s3_bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                ).get("Parts", [])
                if len(parts) == 3:
                    in_progress.extend(p["Size"] for p in parts)
                    break
            time.sleep(0.05)
        yield data[3 * PART :]

    assert storage.put("backups/x/dump", producer()) == len(data)
    assert in_progress == [PART, PART, PART]
    full_key = "prefix/backups/x/dump"
    sizes = [
        client.head_object(Bucket=s3_bucket, Key=full_key, PartNumber=n)["ContentLength"]
        for n in range(1, 5)
    ]
    assert sizes == [PART, PART, PART, 12_345]
    assert storage.get_bytes("backups/x/dump") == data


def test_small_object_is_a_single_put(s3_storage_config: StorageConfig) -> None:
    storage = S3Storage(s3_storage_config)
    sent = record_requests(storage)
    storage.put("small", chunks_of(payload(PART), 1000))
    assert [op for op, _ in sent] == ["PutObject"]


def test_too_many_parts_fails_naming_part_size_and_leaves_no_upload(
    s3_storage_config: StorageConfig,
) -> None:
    storage = S3Storage(with_settings(s3_storage_config, max_parts=2))
    storage.put("fits", chunks_of(payload(2 * PART)))
    with pytest.raises(StorageError, match=r"storage\.part_size") as caught:
        storage.put("too-big", chunks_of(payload(2 * PART + 1)))
    assert caught.value.hint is not None and "storage.part_size" in caught.value.hint
    assert [i.key for i in storage.list("")] == ["fits"]
    assert list(storage.pending_uploads("")) == []


def test_put_memory_is_bounded_by_parts_in_flight(s3_storage_config: StorageConfig) -> None:
    concurrency, total = 2, 40 * MiB
    storage = S3Storage(with_settings(s3_storage_config, upload_concurrency=concurrency))
    block = payload(MiB)

    def producer() -> Iterator[bytes]:
        for _ in range(total // MiB):
            yield block

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        assert storage.put("big", producer()) == total
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    # upload_concurrency parts uploading plus one being filled; a buffering put needs 40 MiB.
    assert peak < (concurrency + 1) * PART + 3 * MiB, f"peak {peak / MiB:.1f} MiB"
    storage.delete("big")


def test_checksum_and_retry_settings_reach_the_client(s3_storage_config: StorageConfig) -> None:
    cfg = with_settings(
        s3_storage_config,
        request_checksum_calculation="when_supported",
        response_checksum_validation="when_supported",
        retry_mode="adaptive",
        max_attempts=7,
        addressing_style="path",
    )
    config: Any = S3Storage(cfg).client.meta.config
    assert config.request_checksum_calculation == "when_supported"
    assert config.response_checksum_validation == "when_supported"
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 7}
    assert config.s3 == {"addressing_style": "path"}
    default: Any = S3Storage(s3_storage_config).client.meta.config
    assert default.request_checksum_calculation == "when_required"


@pytest.mark.parametrize(
    ("setting", "expect_crc"), [("when_required", False), ("when_supported", True)]
)
def test_request_checksum_setting_controls_crc_headers(
    s3_storage_config: StorageConfig, setting: str, expect_crc: bool
) -> None:
    storage = S3Storage(with_settings(s3_storage_config, request_checksum_calculation=setting))
    sent = record_requests(storage)
    storage.put("k", chunks_of(payload(PART + 1)))
    uploads = [headers for op, headers in sent if op in ("UploadPart", "PutObject")]
    assert uploads
    for headers in uploads:
        assert any(h.startswith("x-amz-checksum-") for h in headers) == expect_crc
        assert "content-md5" in headers


def test_abandoned_upload_is_listed_and_aborted(
    s3_storage_config: StorageConfig, moto_server: MotoServer, s3_bucket: str
) -> None:
    storage = S3Storage(s3_storage_config)
    client = moto_server.client()
    # What a killed run leaves behind: an upload with a part, never completed.
    upload_id = client.create_multipart_upload(Bucket=s3_bucket, Key="prefix/backups/x/dump")[
        "UploadId"
    ]
    client.upload_part(
        Bucket=s3_bucket, Key="prefix/backups/x/dump", UploadId=upload_id, PartNumber=1, Body=b"x"
    )
    client.create_multipart_upload(Bucket=s3_bucket, Key="elsewhere/backups/y")
    pending = list(storage.pending_uploads("backups/"))
    assert [(p.key, p.upload_id) for p in pending] == [("backups/x/dump", upload_id)]
    # moto reports a fixed Initiated date (2010-11-10), so only the type can be checked here.
    assert pending[0].started.tzinfo is not None
    assert list(storage.pending_uploads("exports/")) == []
    assert not storage.exists("backups/x/dump")
    storage.abort_upload(pending[0])
    assert list(storage.pending_uploads("")) == []
    storage.abort_upload(pending[0])  # idempotent


def test_interrupt_during_put_aborts_the_upload(s3_storage_config: StorageConfig) -> None:
    storage = S3Storage(s3_storage_config)

    def producer() -> Iterator[bytes]:
        yield payload(2 * PART + 5)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        storage.put("k", producer())
    assert list(storage.pending_uploads("")) == []
    assert not storage.exists("k")


def test_failed_part_upload_raises_storage_error_and_leaves_nothing(
    s3_storage_config: StorageConfig, moto_server: MotoServer, s3_bucket: str
) -> None:
    storage = S3Storage(s3_storage_config)
    client = moto_server.client()

    def producer() -> Iterator[bytes]:
        yield payload(PART)
        yield payload(PART)
        # Another actor aborts the upload: the next part fails on the server.
        for upload in client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []):
            client.abort_multipart_upload(
                Bucket=s3_bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        yield payload(PART)
        yield payload(PART)

    with pytest.raises(StorageError, match=r"prefix/backups/x/dump: .*part \d+ of") as caught:
        storage.put("backups/x/dump", producer())
    assert caught.value.__cause__ is not None
    assert list(storage.pending_uploads("")) == []
    assert not storage.exists("backups/x/dump")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_unreachable_endpoint_fails_fast_without_credentials_in_message() -> None:
    cfg = StorageConfig(
        url="s3://drtool-unreachable/prefix",
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        region="us-east-1",
        access_key_id=SecretStr("AKIAEXAMPLEKEYID0001"),
        secret_access_key=SecretStr("wJalrXUtnFEMI-very-secret-value"),
        max_attempts=1,
    )
    storage = S3Storage(cfg)
    calls: list[Callable[[], object]] = [
        lambda: storage.put_bytes("backups/m.json", b"{}"),
        lambda: storage.put("backups/dump", chunks_of(payload(PART + 1))),
        lambda: storage.get_bytes("backups/m.json"),
        lambda: list(storage.list("backups/")),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(StorageError) as caught:
            call()
        assert time.monotonic() - started < 10
        error = caught.value
        text = f"{error} {error.hint}"
        assert "cannot connect" in str(error) and "storage.endpoint_url" in (error.hint or "")
        assert "AKIAEXAMPLEKEYID0001" not in text and "very-secret" not in text
        assert isinstance(error.__cause__, Exception)


def test_missing_bucket_names_storage_url(moto_server: MotoServer) -> None:
    cfg = StorageConfig(
        url="s3://drtool-no-such-bucket/p",
        endpoint_url=moto_server.endpoint_url,
        region="us-east-1",
        access_key_id=SecretStr("testing"),
        secret_access_key=SecretStr("testing"),
    )
    with pytest.raises(StorageError) as caught:
        S3Storage(cfg).put_bytes("k", b"x")
    assert "s3://drtool-no-such-bucket/p/k" in str(caught.value)
    assert "storage.url" in (caught.value.hint or "")


@pytest.mark.parametrize("size", [0, 100, 7 * MiB + 123], ids=["empty", "small", "ranges"])
def test_parallel_ranged_get_returns_identical_bytes(
    s3_storage_config: StorageConfig, size: int
) -> None:
    cfg = with_settings(s3_storage_config, download_concurrency=3, download_part_size=MiB)
    storage = S3Storage(cfg)
    data = payload(size, seed=3)
    storage.put("k", chunks_of(data))
    sent = record_requests(storage)
    chunks = list(storage.get("k"))
    assert b"".join(chunks) == data
    assert all(len(c) <= MiB for c in chunks)
    ranged = [h for op, h in sent if op == "GetObject" and "range" in h]
    assert len(ranged) == (8 if size > MiB else 0)
    with pytest.raises(NotFoundInStorage):
        storage.get("absent")


def test_object_lock_sets_retention_on_data_and_manifests_only(moto_server: MotoServer) -> None:
    bucket = moto_server.create_bucket(ObjectLockEnabledForBucket=True)
    try:
        cfg = StorageConfig(
            url=f"s3://{bucket}/p",
            endpoint_url=moto_server.endpoint_url,
            region="us-east-1",
            access_key_id=SecretStr("testing"),
            secret_access_key=SecretStr("testing"),
            part_size=PART,
            object_lock=ObjectLockConfig(mode="governance", days=2),
        )
        storage = S3Storage(cfg)
        sent = record_requests(storage)
        storage.put_bytes("backups/x/manifest.json", b"{}")
        storage.put("backups/x/dump", chunks_of(payload(PART + 1)))
        storage.put_bytes("runs/backup.json", b"{}")
        storage.put_bytes("archive/p/journal/x.json", b"{}")
        assert storage.put_if("scheduler/backup.json", b"{}", etag=None) is not None
        locked = storage.stat("backups/x/manifest.json").locked_until
        assert locked is not None
        assert abs(locked - (datetime.now(UTC) + timedelta(days=2))) < timedelta(minutes=5)
        for key in ["runs/backup.json", "archive/p/journal/x.json", "scheduler/backup.json"]:
            assert storage.stat(key).locked_until is None, key
        # moto drops the lock of multipart uploads on completion; check what was asked for.
        started = [h for op, h in sent if op == "CreateMultipartUpload"]
        assert started and started[0].get("x-amz-object-lock-mode") == "GOVERNANCE"
    finally:
        moto_server.empty_bucket(bucket)


def test_json_objects_are_stored_as_application_json(
    s3_storage_config: StorageConfig, moto_server: MotoServer, s3_bucket: str
) -> None:
    storage = S3Storage(s3_storage_config)
    storage.put_bytes("backups/x/manifest.json", b"{}")
    storage.put("backups/x/dump", chunks_of(payload(2 * PART + 1)))
    storage.put_bytes("runs/backup.json", b"{}")
    assert storage.put_if("scheduler/backup.json", b"{}", etag=None) is not None
    head = moto_server.client().head_object
    types = {
        key: head(Bucket=s3_bucket, Key=f"prefix/{key}")["ContentType"]
        for key in [
            "backups/x/manifest.json",
            "backups/x/dump",
            "runs/backup.json",
            "scheduler/backup.json",
        ]
    }
    assert types == {
        "backups/x/manifest.json": "application/json",
        "backups/x/dump": "application/octet-stream",
        "runs/backup.json": "application/json",
        "scheduler/backup.json": "application/json",
    }


def test_foreign_objects_and_other_prefixes_are_not_listed(
    s3_storage_config: StorageConfig, moto_server: MotoServer, s3_bucket: str
) -> None:
    client = moto_server.client()
    for key in ["prefix/a/ok", "prefix/a/with space", "prefix/a/", "prefix2/a/x", "a/x"]:
        client.put_object(Bucket=s3_bucket, Key=key, Body=b"x")
    assert [i.key for i in S3Storage(s3_storage_config).list("")] == ["a/ok"]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_read_resumes_after_a_dropped_connection(
    s3_storage_config: StorageConfig, concurrency: int
) -> None:
    data = payload(4 * MiB + 17, seed=9)
    S3Storage(s3_storage_config).put("k", [data])
    upstream_port = int(s3_storage_config.endpoint_url.rsplit(":", 1)[1])  # type: ignore[union-attr]
    proxy = FaultProxy(upstream_port, cut_response_after=700 * 1024)
    try:
        cfg = with_settings(
            s3_storage_config,
            endpoint_url=f"http://127.0.0.1:{proxy.port}",
            download_concurrency=concurrency,
            download_part_size=MiB,
        )
        assert S3Storage(cfg).get_bytes("k") == data
        assert proxy.cut.is_set()
        proxy.cut.clear()
        with pytest.raises(StorageError, match="prefix/k: read failed"):
            S3Storage(with_settings(cfg, max_attempts=1)).get_bytes("k")
    finally:
        proxy.close()
