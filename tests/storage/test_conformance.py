"""One conformance suite for every Storage backend: the same guarantees on a local directory
and on S3 (moto_server)."""

from __future__ import annotations

import multiprocessing
import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drtool.config import Config, StorageConfig
from drtool.errors import NotFoundInStorage, StorageError, UsageError
from drtool.services.context import Context
from drtool.services.lease import Lease, read_lease
from drtool.storage import Storage, check_key, open_storage
from drtool.storage.faults import FaultyStorage
from tests.fixtures.s3 import TEST_PART_SIZE_BYTES
from tests.storage.turns import InTurns, contend, contend_in_process

PART = TEST_PART_SIZE_BYTES


class ProducerFailed(RuntimeError):
    """Stands in for pg_dump dying mid-stream."""


@pytest.fixture(params=["local", "s3"])
def storage_config(request: pytest.FixtureRequest) -> StorageConfig:
    name = "file_storage_config" if request.param == "local" else "s3_storage_config"
    config: StorageConfig = request.getfixturevalue(name)
    return config


@pytest.fixture
def storage(storage_config: StorageConfig, tmp_path: Path) -> Storage:
    return open_storage(storage_config, base_dir=tmp_path)


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes, so a misplaced or repeated part is detected."""
    return random.Random(seed).randbytes(size)


def odd_chunks(data: bytes, size: int = 1_000_003) -> Iterator[bytes]:
    """Chunks that never line up with part boundaries."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def failing_stream(data: bytes, fail_after: int) -> Iterator[bytes]:
    sent = 0
    for chunk in odd_chunks(data, 256 * 1024):
        if sent >= fail_after:
            raise ProducerFailed("pg_dump exited with status 1")
        sent += len(chunk)
        yield chunk


def no_pending(storage: Storage) -> bool:
    return list(storage.pending_uploads("")) == []


@pytest.mark.parametrize(
    "size",
    [0, 1, 100_000, PART - 1, PART, PART + 1, 2 * PART, 2 * PART + 1, 3 * PART + 12_345],
    ids=lambda s: f"{s}B",
)
def test_put_get_round_trip_preserves_bytes(storage: Storage, size: int) -> None:
    data = payload(size, seed=size % 7)
    assert storage.put("backups/x/dump", odd_chunks(data)) == size
    assert storage.get_bytes("backups/x/dump") == data
    assert b"".join(storage.get("backups/x/dump")) == data
    assert storage.stat("backups/x/dump").size == size
    assert no_pending(storage)


def test_get_streams_chunks_of_about_one_mib(storage: Storage) -> None:
    data = payload(3 * 1024 * 1024 + 5)
    storage.put("big", [data])
    chunks = list(storage.get("big"))
    assert b"".join(chunks) == data
    assert len(chunks) >= 3
    assert max(len(c) for c in chunks) <= 1024 * 1024


def test_put_bytes_get_bytes_round_trip(storage: Storage) -> None:
    storage.put_bytes("backups/1/manifest.json", b'{"id": 1}')
    assert storage.get_bytes("backups/1/manifest.json") == b'{"id": 1}'
    storage.put_bytes("empty", b"")
    assert storage.get_bytes("empty") == b""


def test_stat_reports_size_and_utc_time(storage: Storage) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    storage.put_bytes("a/b", b"12345")
    info = storage.stat("a/b")
    assert (info.key, info.size, info.locked_until) == ("a/b", 5, None)
    assert info.modified.tzinfo is not None
    assert before <= info.modified <= datetime.now(UTC) + timedelta(seconds=5)


def test_exists_only_for_complete_objects(storage: Storage) -> None:
    assert not storage.exists("a/b")
    storage.put_bytes("a/b", b"x")
    assert storage.exists("a/b")
    assert not storage.exists("a")  # a "directory" is not an object


def test_list_is_recursive_sorted_and_prefix_isolated(storage: Storage) -> None:
    keys = ["b/2", "a-b", "a/b/c", "a/a", "a.b", "ab/x", "a/b/c2", "zz"]
    for key in keys:
        storage.put_bytes(key, key.encode())
    listed = list(storage.list(""))
    assert [i.key for i in listed] == sorted(keys)
    assert {i.key: i.size for i in listed} == {k: len(k) for k in keys}
    assert [i.key for i in storage.list("a/")] == ["a/a", "a/b/c", "a/b/c2"]
    assert [i.key for i in storage.list("a/b/c")] == ["a/b/c", "a/b/c2"]
    assert [i.key for i in storage.list("a")] == ["a-b", "a.b", "a/a", "a/b/c", "a/b/c2", "ab/x"]
    assert list(storage.list("nothing/")) == []


def test_delete_is_idempotent(storage: Storage) -> None:
    storage.put_bytes("a/b/c", b"x")
    storage.delete("a/b/c")
    assert not storage.exists("a/b/c")
    storage.delete("a/b/c")
    storage.delete("never/was")
    assert list(storage.list("")) == []


def test_absent_key_raises_not_found(storage: Storage) -> None:
    with pytest.raises(NotFoundInStorage, match="nope"):
        storage.stat("nope")
    with pytest.raises(NotFoundInStorage, match="nope"):
        storage.get("nope")
    with pytest.raises(NotFoundInStorage):
        storage.get_bytes("nope")


BAD_KEYS = [
    "../x",
    "/abs",
    "a//b",
    "a/./b",
    "",
    "a/",
    "a/..",
    "x" * 901,
    "user input; rm -rf / #\n\x00\u00e9",
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=range(len(BAD_KEYS)))
def test_every_method_rejects_unsafe_keys(storage: Storage, key: str) -> None:
    with pytest.raises(UsageError):
        check_key(key)
    calls: list[Callable[[], object]] = [
        lambda: storage.put(key, [b"x"]),
        lambda: storage.put_bytes(key, b"x"),
        lambda: storage.get(key),
        lambda: storage.get_bytes(key),
        lambda: storage.stat(key),
        lambda: storage.exists(key),
        lambda: storage.delete(key),
        lambda: storage.get_tagged(key),
        lambda: storage.put_if(key, b"x", etag=None),
        lambda: storage.put_if(key, b"x", etag="abc"),
    ]
    for call in calls:
        with pytest.raises(UsageError):
            call()
    assert list(storage.list("")) == []


def test_list_rejects_unsafe_prefixes(storage: Storage) -> None:
    for prefix in ["../", "/abs/", "a//", "a/../"]:
        with pytest.raises(UsageError):
            list(storage.list(prefix))
        with pytest.raises(UsageError):
            list(storage.pending_uploads(prefix))


@pytest.mark.parametrize("fail_after", [0, 100_000, 2 * PART + 7], ids=["start", "small", "parts"])
def test_failing_producer_leaves_nothing_and_its_error_propagates(
    storage: Storage, fail_after: int
) -> None:
    data = payload(3 * PART)
    with pytest.raises(ProducerFailed, match="pg_dump exited"):
        storage.put("backups/x/dump", failing_stream(data, fail_after))
    assert not storage.exists("backups/x/dump")
    assert list(storage.list("")) == []
    assert no_pending(storage)


def test_cut_put_closes_the_producer(storage: Storage) -> None:
    closed = threading.Event()

    def producer() -> Iterator[bytes]:
        try:
            yield b"x" * 1000
            raise ProducerFailed("boom")
        finally:
            closed.set()

    faulty = FaultyStorage(storage, fail_put_after_bytes=500)
    with pytest.raises(StorageError, match="injected fault"):
        faulty.put("k", producer())
    assert closed.is_set()


@pytest.mark.parametrize("fail_after", [10, PART + 10], ids=["small", "parts"])
def test_stream_cut_by_faulty_storage_leaves_nothing(storage: Storage, fail_after: int) -> None:
    faulty = FaultyStorage(storage, fail_put_after_bytes=fail_after)
    with pytest.raises(StorageError, match="injected fault"):
        faulty.put("backups/x/dump", odd_chunks(payload(2 * PART + 3)))
    assert not storage.exists("backups/x/dump")
    assert list(storage.list("")) == []
    assert no_pending(storage)


def test_faulty_get_cuts_and_corrupts_reads(storage: Storage) -> None:
    data = payload(2 * 1024 * 1024)
    storage.put("k", [data])
    with pytest.raises(StorageError, match="injected fault"):
        b"".join(FaultyStorage(storage, fail_get_after_bytes=1000).get("k"))
    flipped = FaultyStorage(storage, corrupt_get=lambda b: bytes([b[0] ^ 1]) + b[1:])
    corrupted = flipped.get_bytes("k")
    assert len(corrupted) == len(data) and corrupted != data


def test_upload_in_progress_is_pending_and_not_listed(storage: Storage) -> None:
    data = payload(2 * PART + 10)
    seen: dict[str, object] = {}

    def producer() -> Iterator[bytes]:
        yield from odd_chunks(data[: 2 * PART])
        seen["listed"] = [i.key for i in storage.list("")]
        seen["exists"] = storage.exists("backups/x/dump")
        seen["pending"] = [p.key for p in storage.pending_uploads("backups/")]
        seen["elsewhere"] = list(storage.pending_uploads("exports/"))
        yield data[2 * PART :]

    storage.put("backups/x/dump", producer())
    assert seen == {"listed": [], "exists": False, "pending": ["backups/x/dump"], "elsewhere": []}
    assert no_pending(storage)
    assert storage.get_bytes("backups/x/dump") == data


def test_aborting_an_upload_in_progress_makes_its_put_fail(storage: Storage) -> None:
    def producer() -> Iterator[bytes]:
        yield from odd_chunks(payload(2 * PART))
        for upload in storage.pending_uploads(""):
            storage.abort_upload(upload)
        yield from odd_chunks(payload(2 * PART))

    with pytest.raises(StorageError, match="backups/x/dump"):
        storage.put("backups/x/dump", producer())
    assert not storage.exists("backups/x/dump")
    assert no_pending(storage)


def test_interrupted_overwrite_keeps_the_old_object(storage: Storage) -> None:
    storage.put("k", [b"old" * 1000])
    with pytest.raises(ProducerFailed):
        storage.put("k", failing_stream(payload(2 * PART), PART + 1))
    assert storage.get_bytes("k") == b"old" * 1000
    assert no_pending(storage)


def test_overwrite_is_atomic_for_concurrent_readers(storage: Storage) -> None:
    old, new = payload(PART + 100, seed=1), payload(PART + 100, seed=2)
    storage.put("k", [old])
    seen: list[bytes] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(storage.get_bytes("k"))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(3):
            storage.put("k", odd_chunks(new))
            storage.put("k", odd_chunks(old))
    finally:
        stop.set()
        thread.join()
    assert seen and all(body in (old, new) for body in seen)


def test_description_names_the_location_without_secrets(storage: Storage) -> None:
    assert storage.description.startswith(("file:///", "s3://"))
    assert "testing" not in storage.description


# -- conditional writes, and the scheduler's lease built on them ---------------------------

LEASE_KEY = "scheduler/backup.json"
NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
ACQUIRERS = 6


def test_put_if_creates_only_when_absent(storage: Storage) -> None:
    etag = storage.put_if(LEASE_KEY, b"one", etag=None)
    assert etag is not None
    assert storage.put_if(LEASE_KEY, b"two", etag=None) is None
    assert storage.get_tagged(LEASE_KEY) == (b"one", etag)
    with pytest.raises(NotFoundInStorage):
        storage.get_tagged("scheduler/other.json")


def test_put_if_replaces_only_an_unchanged_object(storage: Storage) -> None:
    first = storage.put_if(LEASE_KEY, b"one", etag=None)
    assert first is not None
    second = storage.put_if(LEASE_KEY, b"two", etag=first)
    assert second is not None and second != first
    assert storage.put_if(LEASE_KEY, b"three", etag=first) is None  # a stale writer
    assert storage.get_tagged(LEASE_KEY) == (b"two", second)
    storage.put_bytes(LEASE_KEY, b"overwritten")
    assert storage.put_if(LEASE_KEY, b"four", etag=second) is None
    storage.delete(LEASE_KEY)
    assert storage.put_if(LEASE_KEY, b"five", etag=second) is None  # gone: not recreated
    assert not storage.exists(LEASE_KEY)
    assert no_pending(storage)


def lease_context(storage: Storage, now: datetime) -> Context:
    return Context(Config(storage=StorageConfig()), storage, lambda: now)


def test_concurrent_acquirers_in_threads_exactly_one_wins(storage: Storage) -> None:
    armed = threading.Event()
    armed.set()
    turns = InTurns(storage, threading.Barrier(ACQUIRERS, timeout=120), threading.Lock(), armed)
    with ThreadPoolExecutor(ACQUIRERS) as pool:
        leases = list(pool.map(lambda _: contend(turns, "backup", NOW), range(ACQUIRERS)))
    armed.clear()
    winners = [lease for lease in leases if lease is not None]
    try:
        assert len(winners) == 1
        assert read_lease(lease_context(storage, NOW), "backup").holder == winners[0].holder
    finally:
        for lease in winners:
            lease.release()


def test_concurrent_acquirers_in_processes_exactly_one_wins(
    storage: Storage, storage_config: StorageConfig, tmp_path: Path
) -> None:
    spawn = multiprocessing.get_context("spawn")
    count = 4
    barrier, turn, results = spawn.Barrier(count, timeout=120), spawn.Lock(), spawn.Queue()
    args = (storage_config, str(tmp_path), barrier, turn, results)
    children = [spawn.Process(target=contend_in_process, args=args) for _ in range(count)]
    for child in children:
        child.start()
    holders = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join()
    assert [child.exitcode for child in children] == [0] * count
    winners = [holder for holder in holders if holder is not None]
    assert len(winners) == 1
    assert read_lease(lease_context(storage, NOW), "backup").holder == winners[0]


def test_release_never_removes_another_holders_lease(storage: Storage) -> None:
    first = Lease(lease_context(storage, NOW), "backup")
    assert first.acquire() is None
    later = Lease(lease_context(storage, NOW + timedelta(minutes=10)), "backup")
    assert later.acquire() is None  # the first lease expired unrenewed
    first.release()
    state = read_lease(lease_context(storage, NOW), "backup")
    assert state.holder == later.holder
    later.release()
    state = read_lease(lease_context(storage, NOW), "backup")
    assert (state.holder, state.last_started_at) == (None, NOW + timedelta(minutes=10))


def test_a_stale_holder_cannot_renew(storage: Storage) -> None:
    first = Lease(lease_context(storage, NOW), "backup")
    assert first.acquire() is None
    assert first.renew()
    later = Lease(lease_context(storage, NOW + timedelta(minutes=10)), "backup")
    assert later.acquire() is None
    try:
        assert not first.renew()
        assert first.lost.is_set() and not later.lost.is_set()
        assert read_lease(lease_context(storage, NOW), "backup").holder == later.holder
        assert later.renew()
    finally:
        first.release()
        later.release()
    assert read_lease(lease_context(storage, NOW), "backup").holder is None
