"""The least-privilege policies of deploy/iam/, enforced by a moto_server of the test's own
(tests/fixtures/moto_iam.py): real drtool runs as each principal.

- backup writer: ``backup`` (with Object Lock retention), ``verify`` and ``archive run``
  (locked batches, its journal written and removed) succeed; it cannot delete a backup's
  manifest or data object, nor an archive batch, nor write outside its prefixes; the state
  drtool rewrites (archive journal, scheduler leases) it can delete or overwrite. A failed
  item's clean-up and archival's reconciliation are refused the delete and carry on (logged);
  ``prune``, as the pruner, removes the failed item's leftovers later.
- pruner: ``prune`` removes what retention drops (and leftovers), keeps locked backups; it
  cannot write a backup.
- replica writer: reads the primary (``verify``), writes the replica (``drtool replicate``:
  server-side copies, locked by the replica's object_lock, then ``verify`` there), and is
  refused every put/delete of an item on the primary (a ``backup`` against the primary fails).
- restore reader: reads both, writes no item and deletes nothing.
- the backup writer may read the replica and record verifications and drills there (a
  scheduled ``verify``/``rehearse --from``), never touch its items.

What moto cannot enforce (see tests/fixtures/moto_iam.py): conditions (the bucket policies'
TLS and principal conditions), and the permissions AWS derives from a request's parameters:
``s3:DeleteObjectVersion`` (a delete with a VersionId is checked as ``s3:DeleteObject``),
``s3:BypassGovernanceRetention`` (moto honours the bypass header for anyone allowed to delete;
the explicit Deny in the policies is for AWS), ``s3:PutObjectRetention`` apart from
``s3:PutObject``, and the source read of a CopyObject.
Bucket policies are not evaluated: they are checked for structure here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from drtool.catalog.archive_records import JournalEntry, clear_journal, journal_key, write_journal
from drtool.catalog.writer import ItemWriter
from drtool.config import Config
from drtool.errors import StorageError
from drtool.services.archive.reconcile import _remove_folder
from drtool.services.context import Context
from drtool.services.lease import Lease
from drtool.storage import open_storage
from tests.fixtures.cli import Setup, make_setup
from tests.fixtures.moto_iam import IAM_DIR, PREFIX, PRIMARY, REPLICA, IamMoto, load_policy
from tests.integration.test_archive import archive_setup, sample_copy

ZERO_RETENTION = {
    "keep_last": 1,
    "keep_daily": 0,
    "keep_weekly": 0,
    "keep_monthly": 0,
    "keep_yearly": 0,
}


def _denied(call: Any, **kwargs: Any) -> None:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    assert caught.value.response["Error"]["Code"] == "AccessDenied", caught.value.response


def _keys(iam_moto: IamMoto, bucket: str, under: str) -> list[str]:
    listed = iam_moto.client("admin").list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/{under}")
    return [item["Key"] for item in listed.get("Contents", [])]


def _setup(iam_moto: IamMoto, directory: Path, db: Any, principal: str, **kwargs: Any) -> Setup:
    bucket = kwargs.pop("bucket", PRIMARY)
    lock_days = kwargs.pop("lock_days", None)
    cfg = iam_moto.storage_config(principal, bucket, lock_days=lock_days)
    setup = make_setup(directory, db.dsn, db.password, cfg)
    if lock_days:
        setup.doc["storage"]["object_lock"] = {"mode": "governance", "days": lock_days}
    setup.doc.update(kwargs)
    setup.write()
    return setup


def test_the_writer_backs_up_and_verifies_but_cannot_delete_items(
    tmp_path: Path, sample_db: Any, iam_moto: IamMoto
) -> None:
    writer = _setup(iam_moto, tmp_path / "writer", sample_db, "writer", lock_days=35)
    backup_id = writer.run("backup").stdout.strip().splitlines()[-1]
    assert writer.run("verify", backup_id, "--json").json["ok"] is True

    client = iam_moto.client("writer")
    keys = _keys(iam_moto, PRIMARY, f"backups/{backup_id}/")
    manifest = f"{PREFIX}/backups/{backup_id}/manifest.json"
    data = [key for key in keys if not key.endswith(".json")]
    assert manifest in keys and data
    head = client.head_object(Bucket=PRIMARY, Key=manifest)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    for key in [manifest, *data]:
        _denied(client.delete_object, Bucket=PRIMARY, Key=key)
    version = client.head_object(Bucket=PRIMARY, Key=data[0])["VersionId"]
    _denied(client.delete_object, Bucket=PRIMARY, Key=data[0], VersionId=version)
    _denied(client.put_object, Bucket=PRIMARY, Key="elsewhere/x", Body=b"x")
    _denied(client.put_object, Bucket=REPLICA, Key=f"{PREFIX}/backups/x/y", Body=b"x")
    assert _keys(iam_moto, PRIMARY, f"backups/{backup_id}/") == keys

    # The state drtool rewrites: the archive journal is written and removed by the writer;
    # an archive batch (its manifest and rows) is never removed by it.
    storage = open_storage(iam_moto.storage_config("writer"))
    ctx = Context(Config(storage=iam_moto.storage_config("writer")), storage)
    now = datetime.now(UTC)
    batch = f"archive/events/{now:%Y}/{now:%m}/b1/"
    entry = JournalEntry(
        kind="archive-batch",
        id="b1",
        policy="events",
        prefix=batch,
        table="public.events",
        created_at=now,
        cutoff=now,
    )
    write_journal(storage, entry)
    storage.put_bytes(batch + "rows.copy.zst.age", b"rows")
    storage.put_bytes(batch + "manifest.json", b"{}")
    _denied(client.delete_object, Bucket=PRIMARY, Key=f"{PREFIX}/{batch}manifest.json")
    # Reconciliation of a batch that never completed: the deletes are refused, logged, and
    # the run goes on (before the fix this raised and the journal entry stuck forever).
    _remove_folder(ctx, batch)
    assert len(_keys(iam_moto, PRIMARY, batch)) == 2
    clear_journal(storage, entry)
    assert not storage.exists(journal_key("events", "b1"))
    # The scheduler's lease (conditional puts) is the writer's to take, renew and release.
    lease = Lease(ctx, "backup")
    assert lease.acquire() is None
    assert lease.renew()
    lease.release()


@pytest.fixture
def iam_archive_db(pg_cluster: Any, sample_db: Any) -> Iterator[str]:
    yield from sample_copy(pg_cluster)


def test_archive_run_as_the_writer_stores_locked_batches_and_clears_its_journal(
    tmp_path: Path, pg_cluster: Any, iam_archive_db: str, iam_moto: IamMoto
) -> None:
    cfg = iam_moto.storage_config("writer", lock_days=35)
    setup = archive_setup(tmp_path / "cfg", pg_cluster, iam_archive_db, cfg)
    setup.doc["storage"]["object_lock"] = {"mode": "governance", "days": 35}
    setup.write()
    run = setup.run("archive", "run", "--policy", "finished-jobs", "--batch-size", "150")
    assert "rows archived" in run.stdout
    policy = "archive/finished-jobs/"
    assert _keys(iam_moto, PRIMARY, policy + "journal/") == []  # written, then deleted
    batch = [key for key in _keys(iam_moto, PRIMARY, policy) if key.endswith("manifest.json")]
    assert batch
    client = iam_moto.client("writer")
    for key in batch:
        assert client.head_object(Bucket=PRIMARY, Key=key)["ObjectLockMode"] == "GOVERNANCE"
        _denied(client.delete_object, Bucket=PRIMARY, Key=key)
    reader = iam_moto.env("reader")
    listed = setup.run("archive", "list", "--json", extra_env=reader).json["items"]
    assert listed and {i["status"] for i in listed} == {"archived"}


def test_prune_as_the_pruner_removes_what_retention_drops_and_a_failed_items_leftovers(
    tmp_path: Path, sample_db: Any, iam_moto: IamMoto
) -> None:
    retention = {**ZERO_RETENTION, "abandoned_after": "0s"}
    writer = _setup(iam_moto, tmp_path / "writer", sample_db, "writer", retention=retention)
    locked = _setup(iam_moto, tmp_path / "locked", sample_db, "writer", lock_days=1)
    oldest = locked.run("backup").stdout.strip().splitlines()[-1]
    older = writer.run("backup").stdout.strip().splitlines()[-1]
    newest = writer.run("backup").stdout.strip().splitlines()[-1]

    # A failed item: the writer's clean-up is refused the delete, logs it and goes on.
    storage = open_storage(iam_moto.storage_config("writer"))
    with pytest.raises(RuntimeError), ItemWriter(storage, "backup", "failed", "backups/failed/"):
        storage.put_bytes("backups/failed/dump.pgdump.zst.age", b"partial")
        raise RuntimeError("pg_dump died")
    assert _keys(iam_moto, PRIMARY, "backups/failed/")

    _denied(
        iam_moto.client("pruner").put_object,
        Bucket=PRIMARY,
        Key=f"{PREFIX}/backups/{newest}/extra",
        Body=b"x",
    )
    writer.write()
    pruner = Setup(
        writer.dir,
        writer.config_path,
        writer.identity_path,
        writer.recipient,
        writer.doc,
        {**writer.env, **iam_moto.env("pruner")},
    )
    out = pruner.run("prune", "--json").json
    assert [e["id"] for e in out["removed"]] == [older]
    kept = {e["id"]: e["reason"] for e in out["kept"]}
    assert set(kept) == {oldest, newest}
    assert "object lock" in kept[oldest]
    assert out["abandoned_removed"] == 1
    assert _keys(iam_moto, PRIMARY, f"backups/{older}/") == []
    assert _keys(iam_moto, PRIMARY, "backups/failed/") == []
    assert _keys(iam_moto, PRIMARY, f"backups/{oldest}/")
    assert _keys(iam_moto, PRIMARY, f"backups/{newest}/")
    # Its own scheduler takes the prune lease, and no other job's.
    pruner_cfg = iam_moto.storage_config("pruner")
    pruner_ctx = Context(Config(storage=pruner_cfg), open_storage(pruner_cfg))
    lease = Lease(pruner_ctx, "prune")
    assert lease.acquire() is None
    lease.release()
    with pytest.raises(StorageError, match="AccessDenied"):
        Lease(pruner_ctx, "backup").acquire()
    # As the writer, the same prune is refused its deletes.
    writer.run("backup")
    refused = writer.run("prune", "--json", expect=None)
    assert refused.code != 0 and "AccessDenied" in refused.stderr
    assert _keys(iam_moto, PRIMARY, f"backups/{newest}/manifest.json")


def test_the_replica_writer_writes_the_replica_and_cannot_touch_the_primary(
    tmp_path: Path, sample_db: Any, iam_moto: IamMoto
) -> None:
    writer = _setup(iam_moto, tmp_path / "writer", sample_db, "writer", lock_days=35)
    backup_id = writer.run("backup").stdout.strip().splitlines()[-1]

    # It reads the primary with drtool...
    on_primary = _setup(iam_moto, tmp_path / "primary", sample_db, "replica")
    assert on_primary.run("verify", backup_id, "--json").json["ok"] is True
    # ...and `drtool replicate` copies the backup into the replica (server-side: same endpoint,
    # same principal), bytes unchanged, locked there by the replica's own object_lock...
    client = iam_moto.client("replica")
    keys = _keys(iam_moto, PRIMARY, f"backups/{backup_id}/")
    on_primary.doc["storage"]["replicas"] = [
        {
            "name": "dr",
            "url": f"s3://{REPLICA}/{PREFIX}",
            "endpoint_url": iam_moto.endpoint_url,
            "region": on_primary.doc["storage"].get("region"),
            "object_lock": {"mode": "governance", "days": 35},
        }
    ]
    on_primary.write()
    [replicated] = on_primary.run("replicate", "--json").json["replicas"]
    assert backup_id in replicated["copied"] and not replicated["failed"], replicated
    for key in keys:
        primary_body = client.get_object(Bucket=PRIMARY, Key=key)["Body"].read()
        assert client.get_object(Bucket=REPLICA, Key=key)["Body"].read() == primary_body, key
    # ...and drtool verifies it there.
    on_replica = _setup(iam_moto, tmp_path / "replica", sample_db, "replica", bucket=REPLICA)
    assert on_replica.run("verify", backup_id, "--json").json["ok"] is True
    for key in keys:
        assert client.head_object(Bucket=REPLICA, Key=key)["ObjectLockMode"] == "GOVERNANCE"

    # The backup writer (a scheduled `verify`/`rehearse --from`) reads it and records there,
    # and may not touch its items.
    as_writer = _setup(iam_moto, tmp_path / "writer-dr", sample_db, "writer", bucket=REPLICA)
    assert as_writer.run("verify", backup_id, "--json").json["ok"] is True
    assert len(_keys(iam_moto, REPLICA, f"verifications/{backup_id}/")) == 2
    manifest = f"{PREFIX}/backups/{backup_id}/manifest.json"
    _denied(iam_moto.client("writer").delete_object, Bucket=REPLICA, Key=manifest)
    _denied(iam_moto.client("writer").put_object, Bucket=REPLICA, Key=manifest, Body=b"x")

    for key in keys:
        _denied(client.delete_object, Bucket=PRIMARY, Key=key)
        _denied(client.put_object, Bucket=PRIMARY, Key=key, Body=b"x")
    _denied(client.delete_object, Bucket=REPLICA, Key=manifest)
    _denied(client.put_object, Bucket=PRIMARY, Key=f"{PREFIX}/audit/2026/12/x.json", Body=b"x")
    failed = on_primary.run("backup", expect=None)
    assert failed.code != 0 and "AccessDenied" in failed.stderr
    assert _keys(iam_moto, PRIMARY, "backups/") == keys


def test_the_restore_reader_reads_both_and_writes_no_item(
    tmp_path: Path, sample_db: Any, iam_moto: IamMoto
) -> None:
    writer = _setup(iam_moto, tmp_path / "writer", sample_db, "writer")
    backup_id = writer.run("backup").stdout.strip().splitlines()[-1]
    reader = _setup(iam_moto, tmp_path / "reader", sample_db, "reader")
    assert backup_id in reader.run("list").stdout
    assert reader.run("verify", backup_id, "--json").json["ok"] is True
    client = iam_moto.client("reader")
    for key in _keys(iam_moto, PRIMARY, f"backups/{backup_id}/"):
        _denied(client.delete_object, Bucket=PRIMARY, Key=key)
        _denied(client.put_object, Bucket=PRIMARY, Key=key, Body=b"x")
    _denied(client.put_object, Bucket=REPLICA, Key=f"{PREFIX}/backups/x/y", Body=b"x")
    client.put_object(Bucket=PRIMARY, Key=f"{PREFIX}/drills/x.json", Body=b"{}")


@pytest.mark.parametrize("name", sorted(p.name for p in IAM_DIR.glob("bucket-policy-*.json")))
def test_bucket_policies_are_well_formed_and_scoped_to_their_bucket(name: str) -> None:
    policy = load_policy(name)
    bucket = REPLICA if "replica" in name else PRIMARY
    assert policy["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids))
    for statement in policy["Statement"]:
        assert set(statement) <= {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}
        assert statement["Effect"] in ("Allow", "Deny") and "Principal" in statement
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert action.startswith("s3:"), action
        resources = statement["Resource"]
        for resource in [resources] if isinstance(resources, str) else resources:
            assert resource in (f"arn:aws:s3:::{bucket}",) or resource.startswith(
                f"arn:aws:s3:::{bucket}/"
            ), resource
        if statement["Effect"] == "Deny" and statement["Sid"] != "DenyNonTLS":
            # Every protective Deny spares the storage admin, so the bucket stays manageable.
            arns = json.dumps(statement["Condition"]["ArnNotLike"]["aws:PrincipalArn"])
            assert "role/drtool-storage-admin" in arns
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["DenyNonTLS"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    protected = statements["OnlyTheAdminDeletesVersionsOrChangesProtection"]["Action"]
    for action in (
        "s3:DeleteObjectVersion",
        "s3:BypassGovernanceRetention",
        "s3:PutBucketObjectLockConfiguration",
        "s3:PutLifecycleConfiguration",
        "s3:PutBucketPolicy",
    ):
        assert action in protected


def test_no_identity_policy_grants_a_principal_what_it_must_never_do() -> None:
    """Every principal explicitly denies deleting object versions and bypassing governance
    retention; only the pruner may delete items; only the writer may put them on the primary."""
    for name in ("backup-writer.json", "pruner.json", "replica-writer.json", "restore-reader.json"):
        policy = load_policy(name)
        denied = {a for s in policy["Statement"] if s["Effect"] == "Deny" for a in s["Action"]}
        assert {"s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"} <= denied, name
        for statement in policy["Statement"]:
            assert "Principal" not in statement and "NotResource" not in statement, name
            if statement["Effect"] == "Deny":
                assert "Condition" not in statement, name  # moto would ignore it (see fixture)
            if statement["Effect"] != "Allow" or "s3:DeleteObject" not in statement["Action"]:
                continue
            resources = statement["Resource"]
            resources = [resources] if isinstance(resources, str) else resources
            if name == "backup-writer.json":
                assert resources == [f"arn:aws:s3:::{PRIMARY}/{PREFIX}/archive/*/journal/*"]
            else:
                assert name == "pruner.json", name
