"""The audit chain on real storage (a local directory and moto S3): records link by the
SHA-256 of the previous record's bytes; N concurrent writers (threads, processes) form one
linear chain with every record present; `audit --verify` names a removed, an edited and a
reordered record, found by really deleting, editing and swapping stored objects."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drtool.catalog.records.audit import AUDIT_HEAD_KEY, record_key
from drtool.config import Config, StorageConfig
from drtool.services.audit.trail import write_audit_record
from drtool.services.audit.view import list_audit, verify_audit
from drtool.services.context import Context
from drtool.storage import Storage, open_storage
from tests.integration.audit_support import (
    SPEC_FIELDS,
    append,
    append_from_process,
    context,
    record_keys,
    records,
    storage_config_json,
)


@pytest.fixture(params=["local", "s3"])
def config(request: pytest.FixtureRequest) -> StorageConfig:
    name = "file_storage_config" if request.param == "local" else "s3_storage_config"
    cfg: StorageConfig = request.getfixturevalue(name)
    return cfg


@pytest.fixture
def storage(config: StorageConfig) -> Storage:
    return open_storage(config)


def assert_linear(storage: Storage, n: int) -> None:
    docs = records(storage)
    keys = record_keys(storage)
    assert [d["seq"] for d in docs] == list(range(1, n + 1))
    assert docs[0]["prev_sha256"] is None
    for prev_key, doc in zip(keys, docs[1:], strict=False):
        assert doc["prev_sha256"] == hashlib.sha256(storage.get_bytes(prev_key)).hexdigest()
    for key, doc in zip(keys, docs, strict=True):
        assert key == record_key(doc["id"])
    head = json.loads(storage.get_bytes(AUDIT_HEAD_KEY))
    assert head["seq"] == n and head["key"] == keys[-1]
    result = verify_audit(context(storage))
    assert result.ok, result.problems
    assert result.records == n


def test_records_chain_by_the_hash_of_the_previous_records_bytes(storage: Storage) -> None:
    append(storage, 4)
    assert_linear(storage, 4)
    doc = records(storage)[0]
    assert set(doc) >= SPEC_FIELDS
    assert set(doc["actor"]) == {"os_user", "host", "db_user"}
    listed = list_audit(context(storage)).records
    assert [r.seq for r in listed] == [4, 3, 2, 1]  # newest first


def test_concurrent_threads_form_one_linear_chain(storage: Storage) -> None:
    threads = [threading.Thread(target=append, args=(storage, 5)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert_linear(storage, 40)


def test_concurrent_processes_form_one_linear_chain(config: StorageConfig) -> None:
    spawn = multiprocessing.get_context("spawn")
    doc = storage_config_json(config)
    procs = [spawn.Process(target=append_from_process, args=(doc, 5, str(i))) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    storage = open_storage(config)
    assert_linear(storage, 20)
    commands = [d["command"] for d in records(storage)]
    assert sorted(set(commands)) == [f"restore-{i}" for i in range(4)]


def _local_path(config: StorageConfig, key: str) -> Path:
    return Path(config.url.removeprefix("file://")) / key


def _replace(config: StorageConfig, storage: Storage, key: str, data: bytes) -> None:
    """Really change the stored object: the file on disk, or the S3 object."""
    if config.url.startswith("file://"):
        _local_path(config, key).write_bytes(data)
    else:
        storage.put_bytes(key, data)


def test_verify_names_a_removed_record(config: StorageConfig, storage: Storage) -> None:
    append(storage, 5)
    keys = record_keys(storage)
    if config.url.startswith("file://"):
        _local_path(config, keys[2]).unlink()
    else:
        storage.delete(keys[2])
    result = verify_audit(context(storage))
    assert not result.ok and result.exit_code == 3
    assert any(keys[3] in p and "seq 3 removed" in p for p in result.problems), result.problems


def test_verify_names_the_newest_record_removed(config: StorageConfig, storage: Storage) -> None:
    append(storage, 3)
    keys = record_keys(storage)
    storage.delete(keys[-1])
    result = verify_audit(context(storage))
    assert not result.ok
    assert any(keys[-1] in p and "removed" in p for p in result.problems), result.problems


def test_verify_names_an_edited_record(config: StorageConfig, storage: Storage) -> None:
    append(storage, 5)
    keys = record_keys(storage)
    doc = json.loads(storage.get_bytes(keys[1]))
    doc["target"] = "elsewhere:5432/app"
    _replace(config, storage, keys[1], (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    result = verify_audit(context(storage))
    assert not result.ok and result.exit_code == 3
    assert any(f"{keys[1]} was edited" in p for p in result.problems), result.problems


def test_verify_names_the_newest_record_edited(config: StorageConfig, storage: Storage) -> None:
    append(storage, 3)
    keys = record_keys(storage)
    data = storage.get_bytes(keys[-1]).replace(b'"succeeded"', b'"failed"')
    _replace(config, storage, keys[-1], data)
    result = verify_audit(context(storage))
    assert any(keys[-1] in p and "edited" in p for p in result.problems), result.problems


def test_verify_names_reordered_records(config: StorageConfig, storage: Storage) -> None:
    append(storage, 5)
    keys = record_keys(storage)
    second, third = storage.get_bytes(keys[1]), storage.get_bytes(keys[2])
    _replace(config, storage, keys[1], third)
    _replace(config, storage, keys[2], second)
    result = verify_audit(context(storage))
    assert not result.ok and result.exit_code == 3
    text = "\n".join(result.problems)
    assert f"{keys[1]}: holds record" in text and "reordered" in text, text
    assert f"{keys[2]}: holds record" in text, text


def test_a_writer_that_died_after_moving_the_head_is_completed(storage: Storage) -> None:
    append(storage, 2)
    keys = record_keys(storage)
    storage.delete(keys[-1])  # as if the writer died between the head and the record
    problems = verify_audit(context(storage)).problems
    assert len(problems) == 1 and "writer died" in problems[0], problems
    append(storage, 1)  # stores the head's copy first, then chains to it
    assert_linear(storage, 3)


def test_since_reads_the_months_it_needs_and_filters_by_time(tmp_path: Path) -> None:
    storage = open_storage(StorageConfig(url=(tmp_path / "s").as_uri()))
    for when in (datetime(2026, 10, 30, tzinfo=UTC), datetime(2026, 11, 29, tzinfo=UTC)):
        ctx = Context(Config(storage=StorageConfig()), storage, lambda w=when: w)
        write_audit_record(ctx, "restore", items=["user:42"], outcome="succeeded")
    now = Context(
        Config(storage=StorageConfig()), storage, lambda: datetime(2026, 12, 2, tzinfo=UTC)
    )
    assert [k.split("/")[2] for k in record_keys(storage)] == ["10", "11"]
    assert len(list_audit(now, since=timedelta(days=40)).records) == 2
    assert len(list_audit(now, since=timedelta(days=5)).records) == 1
    assert len(list_audit(now, user="42").records) == 2
    assert list_audit(now, user="4").records == []
    assert verify_audit(now).ok


def test_a_replica_holds_the_primarys_copied_trail_and_its_own(tmp_path: Path) -> None:
    primary = open_storage(StorageConfig(url=(tmp_path / "p").as_uri()))
    replica = open_storage(StorageConfig(url=(tmp_path / "r").as_uri()))
    append(primary, 3)
    for key in record_keys(primary):  # what `replicate` copies: the records, not the head
        replica.put_bytes(key, primary.get_bytes(key))
    on_replica = Context(
        Config(storage=StorageConfig()), replica, lambda: datetime.now(UTC), source="dr"
    )
    assert verify_audit(on_replica).ok
    for _ in range(2):  # operations run with --from dr record on the replica, in its own trail
        write_audit_record(on_replica, "restore", items=["backup:x"], outcome="succeeded")
    append(primary, 1)
    key = record_keys(primary)[-1]
    replica.put_bytes(key, primary.get_bytes(key))  # the next replicate run
    result = verify_audit(on_replica)
    assert result.ok and result.records == 6, result.problems
    trails = [r.trail for r in list_audit(on_replica).records]
    assert sorted(trails) == ["primary"] * 4 + ["replica:dr"] * 2
