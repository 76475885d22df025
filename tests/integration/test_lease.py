"""The scheduler's lease on real storage (local directory and moto S3): what it stores, how it
treats leases written by earlier versions or damaged, and a conditional write whose answer was
lost. The races themselves are in tests/storage/test_conformance.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drtool.config import Config, StorageConfig
from drtool.services.context import Context
from drtool.services.lease import LEASE_TTL, Lease, lease_key, process_identity, read_lease
from drtool.storage import Storage, open_storage
from drtool.storage.faults import FaultyStorage

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
KEY = lease_key("backup")


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    name = "file_storage_config" if request.param == "local" else "s3_storage_config"
    config: StorageConfig = request.getfixturevalue(name)
    return open_storage(config, base_dir=tmp_path)


def context(storage: Storage, now: datetime) -> Context:
    return Context(Config(storage=StorageConfig()), storage, lambda: now)


def stored(storage: Storage) -> dict[str, object]:
    doc: dict[str, object] = json.loads(storage.get_bytes(KEY))
    return doc


def test_the_lease_document_through_acquire_renew_release(storage: Storage) -> None:
    lease = Lease(context(storage, NOW), "backup")
    assert lease.acquire() is None
    assert stored(storage) == {
        "format": "drtool-lease",
        "version": 1,
        "job": "backup",
        "holder": lease.holder,
        "expires_at": (NOW + LEASE_TTL).isoformat(),
        "last_started_at": NOW.isoformat(),
        "generation": 1,
        "process": process_identity(),
    }
    assert lease.renew() and stored(storage)["generation"] == 2
    lease.release()
    doc = stored(storage)
    assert (doc["holder"], doc["expires_at"], doc["generation"]) == (None, None, 3)
    assert doc["process"] is None
    assert doc["last_started_at"] == NOW.isoformat()  # what a restarted scheduler catches up from
    later = Lease(context(storage, NOW + timedelta(hours=1)), "backup")
    assert later.acquire() is None  # a released lease is free at once
    assert stored(storage)["generation"] == 4
    later.release()


def test_a_lease_written_by_an_earlier_version_is_honoured_then_replaced(
    storage: Storage,
) -> None:
    old = {
        "job": "backup",
        "holder": "old-host:42:abcd1234",
        "expires_at": (NOW + timedelta(minutes=3)).isoformat(),
        "last_started_at": NOW.isoformat(),
    }
    storage.put_bytes(KEY, json.dumps(old).encode())
    held = Lease(context(storage, NOW + timedelta(minutes=1)), "backup").acquire()
    assert held is not None and "old-host:42:abcd1234" in held
    lease = Lease(context(storage, NOW + timedelta(minutes=4)), "backup")
    assert lease.acquire() is None
    assert stored(storage)["holder"] == lease.holder
    lease.release()


def test_an_unreadable_lease_counts_as_free(storage: Storage) -> None:
    storage.put_bytes(KEY, b"\x00 not json")
    lease = Lease(context(storage, NOW), "backup")
    assert lease.acquire() is None
    assert read_lease(context(storage, NOW), "backup").holder == lease.holder
    lease.release()


class AnswerLost(FaultyStorage):
    """Conditional writes land, but their answer is lost and the client's retry finds the
    condition false (S3 answers 412 to a retried If-None-Match whose first try succeeded)."""

    def put_if(self, key: str, data: bytes, *, etag: str | None) -> str | None:
        self.inner.put_if(key, data, etag=etag)
        return None


def test_a_write_that_landed_although_its_answer_was_lost_is_ours(storage: Storage) -> None:
    lease = Lease(context(AnswerLost(storage), NOW), "backup")
    assert lease.acquire() is None
    assert lease.renew()
    lease.release()
    state = read_lease(context(storage, NOW), "backup")
    assert (state.holder, state.last_started_at) == (None, NOW)


class OtherWinsAfterRead(FaultyStorage):
    """Between this acquirer's read of the lease and its write, another scheduler takes it."""

    def __init__(self, inner: Storage, other: Lease) -> None:
        super().__init__(inner)
        self.other: Lease | None = other

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        try:
            return self.inner.get_tagged(key)  # NotFoundInStorage while there is no lease
        finally:
            if self.other is not None:
                other, self.other = self.other, None
                assert other.acquire() is None


@pytest.mark.parametrize("before", ["absent", "released"])
def test_a_lost_race_names_the_winner(storage: Storage, before: str) -> None:
    if before == "released":
        first = Lease(context(storage, NOW - timedelta(hours=1)), "backup")
        assert first.acquire() is None
        first.release()
    winner = Lease(context(storage, NOW), "backup")
    loser = Lease(context(OtherWinsAfterRead(storage, winner), NOW), "backup")
    held = loser.acquire()
    assert held is not None and winner.holder in held and "won the race" in held
    assert read_lease(context(storage, NOW), "backup").holder == winner.holder
    loser.release()  # a loser's release changes nothing
    assert read_lease(context(storage, NOW), "backup").holder == winner.holder
    winner.release()


HOLD = """
import sys, time
from datetime import datetime
from drtool.config import Config, StorageConfig
from drtool.services.context import Context
from drtool.services.lease import Lease
from drtool.storage import open_storage
storage = open_storage(StorageConfig(url=sys.argv[1]))
now = datetime.fromisoformat(sys.argv[2])
ctx = Context(Config(storage=StorageConfig()), storage, lambda: now)
assert Lease(ctx, "backup").acquire() is None
print("held", flush=True)
time.sleep(600)
"""


def _holder(tmp_path: Path) -> subprocess.Popen[str]:
    """Another process that takes the lease on a file:// storage and keeps running."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, (tmp_path / "store").as_uri(), NOW.isoformat()],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_lease_whose_holder_was_killed_is_taken_over_before_it_expires(
    tmp_path: Path,
) -> None:
    """The holder (another process on this machine) runs: its lease is honoured. Killed with
    SIGKILL (no release), its lease is still unexpired, yet the next run takes it at once."""
    storage = open_storage(StorageConfig(url=(tmp_path / "store").as_uri()))
    proc = _holder(tmp_path)
    try:
        held = Lease(context(storage, NOW + timedelta(minutes=1)), "backup").acquire()
        assert held is not None and f":{proc.pid}:" in held
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = read_lease(context(storage, NOW), "backup")
    assert state.expires_at is not None and state.expires_at > NOW + timedelta(minutes=1)
    lease = Lease(context(storage, NOW + timedelta(minutes=1)), "backup")
    assert lease.acquire() is None
    assert stored(storage)["holder"] == lease.holder
    lease.release()


@pytest.mark.parametrize("other", ["boot_id", "pid_ns"])
def test_a_dead_pid_of_another_kernel_or_container_is_not_judged(
    tmp_path: Path, other: str
) -> None:
    """A pid means nothing outside its kernel boot and PID namespace: a lease whose holder ran
    elsewhere waits for its expiry even if no such pid runs here."""
    storage = open_storage(StorageConfig(url=(tmp_path / "store").as_uri()))
    process = {**process_identity(), "pid": 2**22 - 1, "start": 1}  # no such process here
    process[other] = "elsewhere" if other == "boot_id" else -1
    doc = {
        "format": "drtool-lease",
        "version": 1,
        "job": "backup",
        "holder": "other-host:4194303:abcd1234",
        "expires_at": (NOW + timedelta(minutes=3)).isoformat(),
        "last_started_at": NOW.isoformat(),
        "generation": 1,
        "process": process,
    }
    storage.put_bytes(KEY, json.dumps(doc).encode())
    held = Lease(context(storage, NOW + timedelta(minutes=1)), "backup").acquire()
    assert held is not None and "other-host" in held
    same_here = {**doc, "process": {**process_identity(), "pid": 2**22 - 1, "start": 1}}
    storage.put_bytes(KEY, json.dumps(same_here).encode())
    assert Lease(context(storage, NOW + timedelta(minutes=1)), "backup").acquire() is None
