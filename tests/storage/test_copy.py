"""Copying objects between storages (replication's data path) on every pair of backends: bytes
unchanged; server-side between S3 buckets on one endpoint (CopyObject, UploadPartCopy above
the threshold) with the destination's Object Lock and Content-Type; a streamed copy whose
source does not match the expected size/SHA-256 leaves nothing at the destination."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drtool.config import ObjectLockConfig, StorageConfig
from drtool.errors import IntegrityError
from drtool.storage import Storage, open_storage
from drtool.storage.copy import copy_object, digest_of, server_side_possible
from tests.fixtures.s3 import TEST_PART_SIZE_BYTES, MotoServer

PART = TEST_PART_SIZE_BYTES
KEY = "backups/20261126T021500.123Z-7f3a/dump.zst.age"

Maker = Callable[[str], Storage]


@pytest.fixture
def make(tmp_path: Path, moto_server: MotoServer) -> Iterator[Callable[..., Storage]]:
    """``make("local"|"s3", **storage keys)``: a fresh storage of that backend."""
    buckets: list[str] = []
    made: list[str] = []

    def build(backend: str, lock: bool = False, **extra: Any) -> Storage:
        made.append(backend)
        if backend == "local":
            return open_storage(StorageConfig(url=(tmp_path / f"s{len(made)}").as_uri()))
        bucket = moto_server.create_bucket(**({"ObjectLockEnabledForBucket": True} if lock else {}))
        buckets.append(bucket)
        cfg = moto_server.storage_config(bucket, part_size=PART, **extra)
        return open_storage(cfg)

    yield build
    for bucket in buckets:
        moto_server.empty_bucket(bucket)


def payload(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


PAIRS = [("local", "local"), ("local", "s3"), ("s3", "local"), ("s3", "s3")]


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=lambda p: p)
@pytest.mark.parametrize("size", [0, 100_000, 2 * PART + 1], ids=lambda s: f"{s}B")
def test_copy_preserves_bytes_on_every_pair_of_backends(
    make: Callable[..., Storage], src: str, dst: str, size: int
) -> None:
    source, dest = make(src), make(dst)
    data = payload(size)
    source.put(KEY, [data])
    seen: list[int] = []
    copied = copy_object(source, dest, KEY, size=size, sha256=sha(data), progress=seen.append)
    assert copied.size == size and sum(seen) == size
    assert copied.server_side == (src == dst == "s3")
    assert copied.sha256 == (None if copied.server_side else sha(data))
    assert dest.get_bytes(KEY) == data
    assert digest_of(dest, KEY) == (size, sha(data))
    assert list(dest.pending_uploads("")) == []


def test_server_side_copy_above_the_threshold_is_multipart(
    make: Callable[..., Storage], moto_server: MotoServer
) -> None:
    source, dest = make("s3"), make("s3")
    data = payload(2 * PART + 12_345)
    source.put(KEY, [data])
    copied = copy_object(source, dest, KEY, multipart_threshold=PART)
    assert copied.server_side and copied.size == len(data)
    assert dest.get_bytes(KEY) == data
    bucket = dest.bucket  # type: ignore[attr-defined]
    head = moto_server.client().head_object(Bucket=bucket, Key=f"prefix/{KEY}")
    assert head["ETag"].strip('"').endswith("-3")  # three UploadPartCopy parts
    assert list(dest.pending_uploads("")) == []


@pytest.mark.parametrize("threshold", [5 * 1024**3, PART], ids=["CopyObject", "UploadPartCopy"])
def test_a_server_side_copy_takes_the_destinations_object_lock_and_content_type(
    make: Callable[..., Storage], moto_server: MotoServer, threshold: int
) -> None:
    source = make("s3")
    lock = ObjectLockConfig(mode="governance", days=7)
    dest = make("s3", lock=True, object_lock=lock)
    manifest = "backups/20261126T021500.123Z-7f3a/manifest.json"
    record = "drills/20261126T021500.123Z-7f3a.json"
    source.put(KEY, [payload(PART + 1)])
    for key in (manifest, record):
        source.put_bytes(key, b"{}\n")
    for key in (KEY, manifest, record):
        assert copy_object(source, dest, key, multipart_threshold=threshold).server_side
    client, bucket = moto_server.client(), dest.bucket  # type: ignore[attr-defined]
    heads = {
        k: client.head_object(Bucket=bucket, Key=f"prefix/{k}") for k in (KEY, manifest, record)
    }
    soon = datetime.now(UTC) + timedelta(days=7)
    # moto keeps no retention from CreateMultipartUpload (S3 does): the part-copied object is
    # checked for its Content-Type only there.
    locked = (KEY, manifest) if threshold > PART else (manifest,)
    for key in locked:
        assert heads[key]["ObjectLockMode"] == "GOVERNANCE", key
        assert abs(heads[key]["ObjectLockRetainUntilDate"] - soon) < timedelta(hours=1), key
    assert "ObjectLockRetainUntilDate" not in heads[record]
    assert heads[KEY]["ContentType"] == "application/octet-stream"
    assert heads[manifest]["ContentType"] == heads[record]["ContentType"] == "application/json"


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=lambda p: p)
@pytest.mark.parametrize("damage", ["flipped", "truncated", "longer"])
def test_a_source_that_does_not_match_is_never_stored_by_a_streamed_copy(
    make: Callable[..., Storage], src: str, dst: str, damage: str
) -> None:
    source, dest = make(src), make(dst)
    good = payload(2 * PART + 1)
    bad = {
        "flipped": good[:PART] + bytes([good[PART] ^ 1]) + good[PART + 1 :],
        "truncated": good[:-1],
        "longer": good + b"x",
    }[damage]
    source.put(KEY, [bad])
    with pytest.raises(IntegrityError):
        copy_object(source, dest, KEY, size=len(good), sha256=sha(good), server_side=False)
    assert not dest.exists(KEY)
    assert list(dest.pending_uploads("")) == []


def test_server_side_only_on_the_same_endpoint_with_the_same_credentials(
    make: Callable[..., Storage], moto_server: MotoServer
) -> None:
    a, b, local = make("s3"), make("s3"), make("local")
    assert server_side_possible(a, b) and server_side_possible(b, a)
    assert not server_side_possible(local, a) and not server_side_possible(a, local)
    other = open_storage(
        StorageConfig(
            url="s3://elsewhere/prefix",
            endpoint_url="http://127.0.0.1:9",
            access_key_id="testing",  # type: ignore[arg-type]
            secret_access_key="testing",  # type: ignore[arg-type]
        )
    )
    assert not server_side_possible(other, a) and not server_side_possible(a, other)
