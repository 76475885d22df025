"""Archival under real faults: a row updated between copy and delete, storage going away
mid-run, kill -9 at random points, an application holding a lock, a concurrent writer, and a
second run. The invariant every time: the rows left in the table plus the rows of the
non-void archived batches are exactly the original rows, with no row in two batches and none
both archived and still in the table."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drtool.catalog.archive_records import ROWS_FILE, archive_entries, journal_key
from drtool.config import Config, StorageConfig, load_config
from drtool.errors import DrtoolError, StorageError
from drtool.pg.dump.snapshot import lock_key
from drtool.services.archive.restore import verified_rows
from drtool.services.archive.run import ArchiveRequest, lock_name, run_archive
from drtool.services.context import Context
from drtool.services.keys import configured_identities
from drtool.storage import open_storage
from drtool.storage.base import ObjectInfo, PendingUpload, Storage
from tests.fixtures.cli import Setup
from tests.fixtures.pg import TEST_PASSWORD
from tests.integration.test_archive import (
    archive_setup,
    checksum,
    connect,
    sample_copy,
    scalar,
)

RAW = "public.raw_events"
OLD_RAW = "occurred_at < now() - interval '730 days'"


@pytest.fixture
def archive_db(pg_cluster: Any, sample_db: Any) -> Iterator[str]:
    yield from sample_copy(pg_cluster)


@pytest.fixture
def setup(
    tmp_path: Path, pg_cluster: Any, archive_db: str, file_storage_config: StorageConfig
) -> Setup:
    return archive_setup(tmp_path / "cfg", pg_cluster, archive_db, file_storage_config)


def config_of(setup: Setup) -> Config:
    return load_config(setup.config_path, {"DRTOOL_DATABASE__PASSWORD": TEST_PASSWORD})


def context(setup: Setup, wrap: Any = None) -> Context:
    config = config_of(setup)
    storage = open_storage(config.storage, config.base_dir)
    return Context(config, wrap(storage) if wrap else storage)


class Outage:
    """A storage that works for ``puts_ok`` writes, then is unreachable for everything."""

    def __init__(self, inner: Storage, puts_ok: int) -> None:
        self.inner = inner
        self.description = inner.description
        self.puts_left = puts_ok

    def _up(self) -> None:
        if self.puts_left < 0:
            raise StorageError(f"{self.description}: injected outage: storage unreachable")

    def _put(self) -> None:
        self._up()
        self.puts_left -= 1
        self._up()

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        self._put()
        return self.inner.put(key, chunks)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._put()
        self.inner.put_bytes(key, data)

    def get(self, key: str) -> Iterator[bytes]:
        self._up()
        return self.inner.get(key)

    def get_bytes(self, key: str) -> bytes:
        self._up()
        return self.inner.get_bytes(key)

    def stat(self, key: str) -> ObjectInfo:
        self._up()
        return self.inner.stat(key)

    def exists(self, key: str) -> bool:
        self._up()
        return self.inner.exists(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        self._up()
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self._up()
        self.inner.delete(key)

    def pending_uploads(self, prefix: str) -> Iterator[PendingUpload]:
        return self.inner.pending_uploads(prefix)

    def abort_upload(self, upload: PendingUpload) -> None:
        self.inner.abort_upload(upload)


class UpdateAfterUpload(Outage):
    """Edits one row of the first batch stored (as an application would), right after that
    batch's object is stored and before its delete. Batches are archived by two workers, so
    the batch is identified by its journal entry (its keys), not assumed to be the first."""

    def __init__(self, inner: Storage, pg_cluster: Any, dbname: str) -> None:
        super().__init__(inner, 10**9)
        self.hook: tuple[Any, str] | None = (pg_cluster, dbname)
        self.edited: int | None = None

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        written = self.inner.put(key, chunks)
        if key.endswith(ROWS_FILE) and self.hook is not None:
            cluster, dbname = self.hook
            self.hook = None
            batch_id = key.rsplit("/", 2)[-2]
            entry = json.loads(self.inner.get_bytes(journal_key("old-raw-events", batch_id)))
            self.edited = int(entry["keys"][0][0])
            with connect(cluster, dbname) as conn:
                conn.execute(
                    f"update {RAW} set payload = payload || '{{\"edited\": true}}'"
                    f" where id = {self.edited}"
                )
        return written


def archived_keys(setup: Setup, policy: str) -> list[int]:
    """Primary keys (int) of every row in the policy's non-void batches, decrypted."""
    ctx = context(setup)
    identities = configured_identities(ctx.config)
    keys: list[int] = []
    for entry in archive_entries(ctx.storage, policy):
        if entry.manifest.kind != "archive" or entry.void_reason is not None:
            continue
        for line in verified_rows(ctx, entry, identities):
            keys.append(int(line.split(b"\t", 1)[0]))
    return keys


def table_keys(pg_cluster: Any, dbname: str, table: str, where: str = "true") -> set[int]:
    with connect(pg_cluster, dbname) as conn:
        return {int(r[0]) for r in conn.execute(f"select id from {table} where {where}")}


def assert_exact_partition(
    setup: Setup, pg_cluster: Any, dbname: str, policy: str, table: str, where: str
) -> None:
    """Archived (non-void) + left in the table = the original rows; no duplicates, no overlap."""
    archived = archived_keys(setup, policy)
    assert len(archived) == len(set(archived)), "a row is in two non-void batches"
    left = table_keys(pg_cluster, dbname, table)
    assert not (set(archived) & left), "a row is both archived and still in the table"
    original = table_keys(pg_cluster, "sample", table)
    assert set(archived) | left == original
    assert set(archived) <= table_keys(pg_cluster, "sample", table, where)


def test_row_updated_between_copy_and_delete_is_not_deleted(
    setup: Setup, pg_cluster: Any, archive_db: str
) -> None:
    hooks: list[UpdateAfterUpload] = []

    def wrap(inner: Storage) -> UpdateAfterUpload:
        hooks.append(UpdateAfterUpload(inner, pg_cluster, archive_db))
        return hooks[-1]

    ctx = context(setup, wrap)
    result = run_archive(ctx, ArchiveRequest(policy="old-raw-events", batch_size=20))
    first = hooks[0].edited
    assert first is not None
    run = result.policies[0]
    assert run.void_batches == 1 and run.deleted == run.matched - 20
    assert scalar(pg_cluster, archive_db, f"select payload->'edited' from {RAW} where id = {first}")
    assert len(table_keys(pg_cluster, archive_db, RAW, OLD_RAW)) == 20
    listed = [e.status for e in archive_entries(ctx.storage, "old-raw-events")]
    assert listed.count("void") == 1
    edited = checksum(pg_cluster, archive_db, RAW, f"id = {first}")
    # The next run archives the rows the void batch left, the edited row as it is now.
    again = run_archive(context(setup), ArchiveRequest(policy="old-raw-events")).policies[0]
    assert again.deleted == again.archived == 20
    assert_exact_partition(setup, pg_cluster, archive_db, "old-raw-events", RAW, OLD_RAW)
    setup.run(
        "archive", "restore", "--policy", "old-raw-events", "--to", pg_cluster.dsn(archive_db)
    )
    assert checksum(pg_cluster, archive_db, RAW, f"id = {first}") == edited
    assert checksum(pg_cluster, archive_db, RAW, f"id <> {first}") == checksum(
        pg_cluster, "sample", RAW, f"id <> {first}"
    )


@pytest.mark.parametrize("puts_ok", [2, 3, 4, 6])
def test_storage_unreachable_mid_run_fails_and_deletes_no_row_that_is_not_stored(
    puts_ok: int, setup: Setup, pg_cluster: Any, archive_db: str
) -> None:
    # Per batch: journal entry, object, manifest (then the journal entry is deleted).
    ctx = context(setup, lambda s: Outage(s, puts_ok))
    with pytest.raises(DrtoolError) as err:
        run_archive(ctx, ArchiveRequest(policy="old-raw-events", batch_size=25))
    assert err.value.exit_code == 1 and "unreachable" in err.value.message
    stored = len(archived_keys(setup, "old-raw-events"))
    gone = len(table_keys(pg_cluster, "sample", RAW)) - len(table_keys(pg_cluster, archive_db, RAW))
    assert gone <= stored
    assert_exact_partition(setup, pg_cluster, archive_db, "old-raw-events", RAW, OLD_RAW)
    # Storage back: the rerun settles the interrupted batch and finishes; nothing lost.
    run_archive(context(setup), ArchiveRequest(policy="old-raw-events", batch_size=25))
    assert not table_keys(pg_cluster, archive_db, RAW, OLD_RAW)
    assert_exact_partition(setup, pg_cluster, archive_db, "old-raw-events", RAW, OLD_RAW)


def test_kill_9_at_random_points_then_rerun_loses_no_row_and_archives_none_twice(
    setup: Setup, pg_cluster: Any, archive_db: str, empty_db: Any
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    kills = 0
    run = ("archive", "run", "--policy", "old-raw-events", "--batch-size", "3")
    for _ in range(4):
        proc = setup.popen(*run)
        assert proc.stderr is not None
        # Wait until a policy has started (its "... rows ... match" line), then kill -9 at a
        # random moment of the batch loop: before, during or after any step of a batch.
        for line in proc.stderr:
            if "match" in line or "error" in line:
                break
        time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    final = setup.run(*run, "--json").json["policies"]
    assert kills >= 2, f"seed {seed}: runs finished before they were killed"
    print("kill-9 seed", seed, "final run:", [(p["name"], p["reconciled"]) for p in final])
    assert not table_keys(pg_cluster, archive_db, RAW, OLD_RAW), f"seed {seed}"
    assert_exact_partition(setup, pg_cluster, archive_db, "old-raw-events", RAW, OLD_RAW)
    # Restoring every archive into a copy gives exactly the original tables.
    copy = f"{archive_db}_copy"
    with connect(pg_cluster, "postgres") as conn:
        conn.execute(f'create database "{copy}" template "{archive_db}"')
    try:
        restore = ("archive", "restore", "--policy", "old-raw-events")
        setup.run(*restore, "--to", pg_cluster.dsn(copy))
        assert checksum(pg_cluster, copy, RAW) == checksum(pg_cluster, "sample", RAW)
    finally:
        pg_cluster.drop_database(copy)


def test_a_held_lock_makes_the_run_give_up_with_exit_1_naming_it_and_rows_stay(
    tmp_path: Path, pg_cluster: Any, archive_db: str, file_storage_config: StorageConfig
) -> None:
    setup = archive_setup(
        tmp_path / "cfg", pg_cluster, archive_db, file_storage_config, lock_timeout="0.2s"
    )
    before = checksum(pg_cluster, archive_db, RAW)
    with connect(pg_cluster, archive_db) as app:
        app.execute("begin")
        app.execute(f"lock table {RAW} in share mode")  # blocks DELETE, not SELECT
        out = setup.run("archive", "run", "--policy", "old-raw-events", expect=1)
        app.execute("rollback")
    assert "lock" in out.stderr and RAW in out.stderr and "archival.lock_timeout" in out.stderr
    assert checksum(pg_cluster, archive_db, RAW) == before
    listed = setup.run("archive", "list", "--json").json["items"]
    assert listed and {i["status"] for i in listed} == {"pending"}
    # The next run reconciles the stored batches (deletes their rows now) and finishes.
    doc = setup.run("archive", "run", "--policy", "old-raw-events", "--json").json["policies"][0]
    assert doc["reconciled"]["deleted"] == sum(i["rows"] for i in listed)
    assert not table_keys(pg_cluster, archive_db, RAW, OLD_RAW)
    assert_exact_partition(setup, pg_cluster, archive_db, "old-raw-events", RAW, OLD_RAW)


def test_a_concurrent_writer_inserting_is_not_blocked_by_the_run(
    setup: Setup, pg_cluster: Any, archive_db: str
) -> None:
    stop = threading.Event()
    inserted: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with connect(pg_cluster, archive_db) as conn:
                conn.execute("set lock_timeout = '5s'")
                while not stop.is_set():
                    row = conn.execute(
                        f"insert into {RAW} (user_id, provider, event_type, external_id,"
                        " payload, occurred_at) select user_id, provider, event_type, 'new',"
                        f" payload, now() from {RAW} limit 1 returning id"
                    ).fetchone()
                    assert row is not None
                    inserted.append(int(row[0]))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        setup.run("archive", "run", "--policy", "old-raw-events", "--batch-size", "10")
    finally:
        stop.set()
        thread.join(30)
    assert not errors and inserted
    assert table_keys(pg_cluster, archive_db, RAW, "external_id = 'new'") == set(inserted)


def test_a_second_run_of_a_policy_is_refused_with_exit_5_naming_the_lock(
    setup: Setup, pg_cluster: Any, archive_db: str
) -> None:
    name = lock_name("finished-jobs")
    with connect(pg_cluster, archive_db) as other:
        other.execute("select pg_advisory_lock(%s)", (lock_key(name),))
        out = setup.run("archive", "run", "--policy", "finished-jobs", expect=5)
    assert name in out.stderr
    assert setup.run("archive", "list", "--json").json["items"] == []


def test_rows_changed_after_a_crash_void_the_stored_batch_on_reconciliation(
    tmp_path: Path, pg_cluster: Any, archive_db: str, file_storage_config: StorageConfig
) -> None:
    setup = archive_setup(
        tmp_path / "cfg", pg_cluster, archive_db, file_storage_config, lock_timeout="0.2s"
    )
    with connect(pg_cluster, archive_db) as app:
        app.execute("begin")
        app.execute(f"lock table {RAW} in share mode")
        with pytest.raises(DrtoolError) as err:
            run_archive(context(setup), ArchiveRequest(policy="old-raw-events", batch_size=20))
        app.execute("rollback")
    assert err.value.exit_code == 1
    first = int(scalar(pg_cluster, archive_db, f"select min(id) from {RAW} where {OLD_RAW}"))
    with connect(pg_cluster, archive_db) as app:
        app.execute(f"update {RAW} set event_type = 'edited' where id = {first}")
    run = run_archive(context(setup), ArchiveRequest(policy="old-raw-events")).policies[0]
    # One batch per worker may have been stored when the lock stopped the run.
    stats = run.reconciled
    assert stats.voided == 1 and stats.deleted == 20 * (stats.entries - 1)
    assert run.deleted == run.matched + stats.deleted  # matched: counted after reconciling
    assert_exact_partition(setup, pg_cluster, archive_db, "old-raw-events", RAW, OLD_RAW)
    statuses = [i["status"] for i in setup.run("archive", "list", "--json").json["items"]]
    assert statuses.count("void") == 1 and "pending" not in statuses


def test_an_interrupted_purge_is_recorded_by_the_next_run(
    setup: Setup, pg_cluster: Any, archive_db: str
) -> None:
    expired = "expires_at < now()"
    total = len(table_keys(pg_cluster, archive_db, "public.sessions", expired))
    # Journal entry at the start and after each batch: the third update fails.
    ctx = context(setup, lambda s: Outage(s, 3))
    with pytest.raises(DrtoolError):
        run_archive(ctx, ArchiveRequest(policy="expired-sessions", batch_size=10))
    assert len(table_keys(pg_cluster, archive_db, "public.sessions", expired)) == total - 30
    run_archive(context(setup), ArchiveRequest(policy="expired-sessions", batch_size=10))
    assert not table_keys(pg_cluster, archive_db, "public.sessions", expired)
    records = setup.run("archive", "list", "--json").json["items"]
    assert [(r["kind"], r["interrupted"]) for r in records] == [("purge", False), ("purge", True)]
    recorded = sum(r["rows"] for r in records)
    assert total - 10 <= recorded <= total  # an interrupted record may miss its last batch
