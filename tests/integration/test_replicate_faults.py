"""Replication under real faults: an unreachable replica (exit 1, the primary untouched, the
next run completes), a `drtool replicate` killed with SIGKILL mid-copy (the rerun completes
and copies nothing twice; no complete-looking item without its data), and a damaged object
on the primary (exit 3; never on the replica as complete), streamed and server-side."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from drtool.catalog.catalog import Catalog
from drtool.config import StorageConfig
from drtool.storage import open_storage
from tests.fixtures.cli import Setup, make_setup
from tests.fixtures.proxy import FaultProxy
from tests.fixtures.s3 import MotoServer
from tests.integration.replicate_support import (
    add_replica,
    replicated_part,
    s3_env,
    snapshot,
)
from tests.integration.replicate_support import primary as primary  # fixture

KILL_WAIT_S = 120


def clone(primary: Setup, tmp_path: Path) -> Setup:
    return primary.clone(tmp_path / "clone")


def primary_storage(setup: Setup) -> Any:
    return open_storage(StorageConfig(url=setup.doc["storage"]["url"]))


def test_an_unreachable_replica_exits_1_leaves_the_primary_alone_and_the_next_run_completes(
    primary: Setup, tmp_path: Path
) -> None:
    setup = clone(primary, tmp_path)
    add_replica(
        setup,
        "dr",
        StorageConfig(
            url="s3://gone/prefix", endpoint_url="http://127.0.0.1:9", region="us-east-1"
        ),
        max_attempts=1,
    )
    setup.env.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"})
    storage = primary_storage(setup)
    before = snapshot(storage)
    out = setup.run("--json", "replicate", expect=1)
    [result] = out.json["replicas"]
    assert out.json["ok"] is False and result["ok"] is False
    assert "cannot connect to http://127.0.0.1:9" in result["error"]
    assert result["copied"] == []
    assert snapshot(storage) == before
    run = json.loads(storage.get_bytes("runs/replicate.dr.json"))
    assert run["last_ok"] is False and run["last_failure_exit_code"] == 1

    replica_cfg = StorageConfig(url=(tmp_path / "replica").as_uri())
    setup.doc["storage"]["replicas"] = []
    add_replica(setup, "dr", replica_cfg)
    assert setup.run("--json", "replicate").json["replicas"][0]["failed"] == []
    assert snapshot(open_storage(replica_cfg)) == replicated_part(storage)


def test_a_damaged_object_on_the_primary_is_never_streamed_to_the_replica(
    primary: Setup, tmp_path: Path
) -> None:
    setup = clone(primary, tmp_path)
    replica_cfg = StorageConfig(url=(tmp_path / "replica").as_uri())
    add_replica(setup, "dr", replica_cfg)
    storage = primary_storage(setup)
    newest = Catalog(storage).listing("backup").items[0]
    dump = newest.objects[0].key
    path = Path(setup.doc["storage"]["url"].removeprefix("file://")) / dump
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    out = setup.run("--json", "replicate", expect=3)
    [result] = out.json["replicas"]
    assert [f["id"] for f in result["failed"]] == [newest.id]
    assert "damaged" in result["failed"][0]["error"]
    assert newest.id not in result["copied"] and len(result["copied"]) > 1  # the others go on
    replica = open_storage(replica_cfg)
    assert not replica.exists(dump)
    assert newest.id not in [m.id for m in Catalog(replica).listing("backup").items]
    assert list(replica.pending_uploads("")) == []


def test_a_damaged_object_on_the_primary_is_removed_after_a_server_side_copy(
    tmp_path: Path, sample_db: Any, moto_server: MotoServer
) -> None:
    buckets = [moto_server.create_bucket() for _ in range(2)]
    try:
        primary_cfg = moto_server.storage_config(buckets[0])
        setup = make_setup(tmp_path / "cfg", sample_db.dsn, sample_db.password, primary_cfg)
        add_replica(setup, "dr", moto_server.storage_config(buckets[1]))
        backup_id = setup.run("backup").stdout.strip().splitlines()[-1]
        manifest = Catalog(open_storage(primary_cfg)).get(backup_id)
        client, key = moto_server.client(), f"prefix/{manifest.objects[0].key}"
        body = bytearray(client.get_object(Bucket=buckets[0], Key=key)["Body"].read())
        body[-1] ^= 0x01
        client.put_object(Bucket=buckets[0], Key=key, Body=bytes(body))

        out = setup.run("--json", "replicate", expect=3)
        [result] = out.json["replicas"]
        assert result["server_side"] is True
        assert [f["id"] for f in result["failed"]] == [backup_id]
        left = client.list_objects_v2(Bucket=buckets[1], Prefix="prefix/").get("Contents", [])
        assert [o["Key"] for o in left if backup_id in o["Key"]] == []
    finally:
        for bucket in buckets:
            moto_server.empty_bucket(bucket)


def _complete_items_have_their_data(replica: Any) -> int:
    """Every manifest on the replica lists objects that are there with their size."""
    items = 0
    for kind in ("backup", "export", "archive"):
        for manifest in Catalog(replica).listing(kind).items:  # type: ignore[arg-type]
            items += 1
            for entry in manifest.objects:
                assert replica.stat(entry.key).size == entry.size, entry.key
    return items


def _versions(moto: MotoServer, bucket: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for page in moto.client().get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            out.setdefault(version["Key"], []).append(version["VersionId"])
    return out


def test_a_replicate_killed_mid_copy_resumes_and_copies_nothing_twice(
    primary: Setup, tmp_path: Path, moto_server: MotoServer
) -> None:
    setup = clone(primary, tmp_path)
    s3_env(setup, moto_server)
    storage = primary_storage(setup)
    total = sum(len(b) for b in (storage.get_bytes(i.key) for i in storage.list("backups/")))
    bucket = moto_server.create_bucket()
    moto_server.client().put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    upstream = int(moto_server.endpoint_url.rsplit(":", 1)[1])
    proxy = FaultProxy(upstream, request_rate=max(total // 10, 64 * 1024))  # ~10 s of backups
    try:
        replica_cfg = moto_server.storage_config(bucket)
        slow = replica_cfg.model_copy(update={"endpoint_url": proxy.endpoint})
        add_replica(setup, "dr", slow)
        child = setup.popen("replicate", "--jobs", "1")
        replica = open_storage(replica_cfg)
        deadline = time.monotonic() + KILL_WAIT_S
        while not any(i.key.endswith("manifest.json") for i in replica.list("backups/")):
            assert child.poll() is None, "replicate finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL

        assert _complete_items_have_their_data(replica) >= 1
        before = _versions(moto_server, bucket)
        partial = snapshot(replica)
        assert partial and partial != replicated_part(storage)  # killed mid-run

        proxy.request_rate = 0
        setup.run("replicate")
        assert snapshot(replica) == replicated_part(storage)
        after = _versions(moto_server, bucket)
        for key, versions in before.items():
            assert after[key] == versions, f"{key} was copied again"
        _complete_items_have_their_data(replica)
    finally:
        proxy.close()
        moto_server.empty_bucket(bucket)
