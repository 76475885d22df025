"""`drtool replicate` end to end on real backups, exports, archive batches and records: every
item a replica lacks is copied byte for byte and verified there, the manifest last; a rerun
copies nothing; retention decides what is worth copying; each replica gets a run record."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from drtool.catalog.archive_records import (
    JournalEntry,
    archive_entries,
    clear_journal,
    write_journal,
)
from drtool.catalog.catalog import Catalog
from drtool.config import Config, StorageConfig
from drtool.services.context import Context
from drtool.services.lease import Lease
from drtool.storage import open_storage
from tests.fixtures.cli import DRTOOL, Setup
from tests.integration.replicate_support import (
    add_replica,
    replicated_part,
    snapshot,
)
from tests.integration.replicate_support import primary as primary  # fixture


def clone(primary: Setup, tmp_path: Path) -> Setup:
    return primary.clone(tmp_path / "clone")


def test_every_kind_of_item_is_copied_byte_for_byte_and_a_rerun_copies_nothing(
    primary: Setup, tmp_path: Path
) -> None:
    setup = clone(primary, tmp_path)
    replica_cfg = StorageConfig(url=(tmp_path / "replica").as_uri())
    add_replica(setup, "dr", replica_cfg)
    primary_storage = open_storage(StorageConfig(url=setup.doc["storage"]["url"]))
    before = snapshot(primary_storage)

    doc = setup.run("--json", "replicate").json
    assert doc["ok"] is True and doc["exit_code"] == 0
    [result] = doc["replicas"]
    assert {"name", "copied", "verified", "failed", "bytes", "seconds"} <= set(result)
    assert result["name"] == "dr" and result["failed"] == [] and result["error"] is None
    replica = open_storage(replica_cfg)
    assert snapshot(replica) == replicated_part(primary_storage)
    assert snapshot(primary_storage) == before  # the primary's items are untouched

    source, target = Catalog(primary_storage), Catalog(replica)
    for kind in ("backup", "export", "archive"):
        ids = [m.id for m in source.listing(kind).items]  # type: ignore[arg-type]
        assert ids and [m.id for m in target.listing(kind).items] == ids, kind  # type: ignore[arg-type]
        assert set(ids) <= set(result["copied"]), kind
    records = [i.key for i in replica.list("verifications/")]
    assert len(records) == 2
    drills = [i.key for i in primary_storage.list("drills/")]
    assert drills and drills == [i.key for i in replica.list("drills/")]
    assert result["verified"] == len(result["copied"])
    # The audit records (export-user, archive run, rehearse) come along, bytes unchanged, and
    # the copied trail verifies on the replica (it has no head of its own).
    audit = [i.key for i in primary_storage.list("audit/") if i.key != "audit/head.json"]
    assert len(audit) == 3 and audit == [i.key for i in replica.list("audit/")]
    assert setup.run("--json", "audit", "--verify", "--from", "dr").json["ok"] is True
    assert len(setup.run("--json", "audit", "--from", "dr").json["records"]) == 3
    assert result["bytes"] >= sum(m.size for m in source.listing("backup").items)

    again = setup.run("--json", "replicate", "--to", "dr", "--jobs", "3").json["replicas"][0]
    assert again["copied"] == [] and again["bytes"] == 0 and again["failed"] == []

    run = json.loads(primary_storage.get_bytes("runs/replicate.dr.json"))
    assert run["job"] == "replicate.dr" and run["last_ok"] is True
    assert run["stats"]["items_copied"] == 0.0

    unknown = setup.run("--json", "replicate", "--to", "nope", expect=2).json
    assert "no replica named 'nope'" in unknown["error"]["message"]


def test_backups_the_replicas_retention_would_remove_are_not_copied(
    primary: Setup, tmp_path: Path
) -> None:
    setup = clone(primary, tmp_path)
    setup.doc["retention"] = {
        "keep_last": 1,
        "keep_daily": 0,
        "keep_weekly": 0,
        "keep_monthly": 0,
        "keep_yearly": 0,
    }
    replica_cfg = StorageConfig(url=(tmp_path / "replica").as_uri())
    add_replica(setup, "dr", replica_cfg)
    result = setup.run("--json", "replicate").json["replicas"][0]
    backups = [
        m.id
        for m in Catalog(open_storage(StorageConfig(url=setup.doc["storage"]["url"])))
        .listing("backup")
        .items
    ]
    newest, older = backups[0], backups[1]
    assert newest in result["copied"] and older not in result["copied"]
    assert older in result["not_copied"]
    assert [m.id for m in Catalog(open_storage(replica_cfg)).listing("backup").items] == [newest]


def test_a_void_marker_reaches_a_batch_that_was_replicated_before_it_was_voided(
    primary: Setup, tmp_path: Path
) -> None:
    setup = clone(primary, tmp_path)
    replica_cfg = StorageConfig(url=(tmp_path / "replica").as_uri())
    add_replica(setup, "dr", replica_cfg)
    setup.run("replicate")
    primary_storage = open_storage(StorageConfig(url=setup.doc["storage"]["url"]))
    batch = next(
        i.key
        for i in primary_storage.list("archive/")
        if i.key.endswith("/manifest.json")
        and "rows.copy.zst.age" in primary_storage.get_bytes(i.key).decode()
    )
    void = batch.removesuffix("manifest.json") + "void.json"
    primary_storage.put_bytes(
        void, b'{"void": true, "reason": "test", "at": "2026-12-05T00:00:00+00:00"}\n'
    )
    result = setup.run("--json", "replicate").json["replicas"][0]
    assert result["copied"] == [] and result["verified"] == 1
    assert open_storage(replica_cfg).get_bytes(void) == primary_storage.get_bytes(void)


def test_a_batch_still_in_the_archive_journal_waits_until_it_is_settled(
    primary: Setup, tmp_path: Path
) -> None:
    setup = clone(primary, tmp_path)
    replica_cfg = StorageConfig(url=(tmp_path / "replica").as_uri())
    add_replica(setup, "dr", replica_cfg)
    storage = open_storage(StorageConfig(url=setup.doc["storage"]["url"]))
    entry = next(e for e in archive_entries(storage) if e.manifest.kind == "archive")
    pending = JournalEntry(
        kind="archive-batch",
        id=entry.manifest.id,
        policy=entry.policy,
        prefix=entry.prefix,
        table="public.jobs",
        created_at=entry.manifest.created_at,
        cutoff=entry.manifest.created_at,
    )
    write_journal(storage, pending)
    result = setup.run("--json", "replicate").json["replicas"][0]
    assert entry.manifest.id not in result["copied"] and result["failed"] == []
    replica = open_storage(replica_cfg)
    assert not replica.exists(entry.prefix + "manifest.json")
    assert not any("/journal/" in i.key for i in replica.list("archive/"))

    clear_journal(storage, pending)
    result = setup.run("--json", "replicate").json["replicas"][0]
    assert result["copied"] == [entry.manifest.id]
    assert snapshot(replica) == replicated_part(storage)


def test_progress_is_shown_on_a_terminal_and_not_in_a_pipe(primary: Setup, tmp_path: Path) -> None:
    setup = clone(primary, tmp_path)
    add_replica(setup, "dr", StorageConfig(url=(tmp_path / "replica").as_uri()))
    master, slave = os.openpty()
    try:
        child = subprocess.Popen(
            [*DRTOOL, "--config", str(setup.config_path), "replicate"],
            stdout=subprocess.PIPE,
            stderr=slave,
            env=setup.env,
        )
        os.close(slave)
        seen = b""
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            seen += data
        out, _ = child.communicate(timeout=120)
    finally:
        os.close(master)
    assert child.returncode == 0
    assert b"replicate dr: " in seen and b"%" in seen, seen
    assert b"replicate dr: " not in out
    piped = setup.run("replicate")
    assert "replicate dr: " not in piped.stderr


def test_a_second_run_to_the_same_replica_is_refused_while_the_first_holds_its_lease(
    primary: Setup, tmp_path: Path
) -> None:
    """Two runs to one replica never interleave (by hand or scheduled): the second exits 5
    naming the lease in the primary storage, copies nothing, and the next run completes."""
    setup = clone(primary, tmp_path)
    replica_cfg = StorageConfig(url=(tmp_path / "replica").as_uri())
    add_replica(setup, "dr", replica_cfg)
    primary_storage = open_storage(StorageConfig(url=setup.doc["storage"]["url"]))
    running = Lease(Context(Config(storage=StorageConfig()), primary_storage), "replicate.dr")
    assert running.acquire() is None  # a run in progress (this live process)
    try:
        refused = setup.run("--json", "replicate", expect=5).json
        [result] = refused["replicas"]
        assert "scheduler/replicate.dr.json" in result["error"], result
        assert list(open_storage(replica_cfg).list("")) == []
    finally:
        running.release()
    [done] = setup.run("--json", "replicate").json["replicas"]
    assert done["error"] is None and done["copied"]
