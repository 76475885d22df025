"""The item writer on a real local directory and on S3 (moto_server): objects first, the sealed
manifest last; any failure before the commit (an exception, Ctrl-C, a storage fault) leaves no
complete-looking item and removes what was stored; a manifest that misstates an object is
refused."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drtool.catalog.catalog import Catalog, backup_prefix
from drtool.catalog.manifest import BackupManifest, ObjectEntry, PurgeManifest
from drtool.catalog.writer import ItemWriter
from drtool.config import StorageConfig
from drtool.crypto.age import open_seal_key
from drtool.crypto.keys import Identity, generate_identity
from drtool.errors import IntegrityError, StorageError, UsageError
from drtool.ids import new_id
from drtool.pipeline.store import load
from drtool.storage import Storage, open_storage
from drtool.storage.faults import FaultyStorage

NOW = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)


class Recording(FaultyStorage):
    """Remembers the order of writes; faults as FaultyStorage."""

    def __init__(self, inner: Storage, **faults: int) -> None:
        super().__init__(inner, **faults)
        self.writes: list[str] = []

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        self.writes.append(key)
        return super().put(key, chunks)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.writes.append(key)
        super().put_bytes(key, data)


class Interrupted(Exception):
    """Stands in for anything failing between two objects (pg_dump dying, a bug)."""


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    name = "file_storage_config" if request.param == "local" else "s3_storage_config"
    config: StorageConfig = request.getfixturevalue(name)
    return open_storage(config, base_dir=tmp_path)


@pytest.fixture
def identity() -> Identity:
    return generate_identity()


def manifest(item: ItemWriter) -> BackupManifest:
    return BackupManifest(
        id=item.id,
        created_at=NOW,
        finished_at=NOW,
        tool_version="test",
        objects=item.entries(),
        tables={"public.t": 2},
    )


def store_two(item: ItemWriter, identity: Identity, second: bytes = b"globals") -> None:
    recipients = [identity.recipient()]
    item.store("dump", "dump.bin.age", [b"dump ", b"bytes"], recipients=recipients, level=1)
    item.store("globals", "globals.bin.age", [second], recipients=recipients, level=1)


def leftovers(storage: Storage, item_id: str) -> list[str]:
    return [info.key for info in storage.list(backup_prefix(item_id))]


def test_objects_are_written_first_and_the_sealed_manifest_last(
    storage: Storage, identity: Identity
) -> None:
    recording = Recording(storage)
    catalog = Catalog(recording)
    item_id = new_id(NOW)
    with catalog.writer("backup", item_id, backup_prefix(item_id)) as item:
        store_two(item, identity)
        assert catalog.listing("backup").items == []  # nothing complete-looking yet
        done = item.commit(manifest(item), seal="dump")
    prefix = backup_prefix(item_id)
    assert recording.writes == [
        prefix + "dump.bin.age",
        prefix + "globals.bin.age",
        prefix + "manifest.json",
    ]
    found = catalog.get(item_id)
    assert found == done and [o.name for o in found.objects] == ["dump", "globals"]
    key = open_seal_key(storage.get(found.object("dump").key), [identity])
    assert found.seal_object == "dump" and found.seal_valid(key)
    plain = b"".join(load(storage, found.object("dump").stored(), [identity]))
    assert plain == b"dump bytes"


@pytest.mark.parametrize("raised", [Interrupted("pg_dump exited 1"), KeyboardInterrupt()])
def test_a_failure_inside_the_block_removes_every_stored_object(
    storage: Storage, identity: Identity, raised: BaseException
) -> None:
    catalog = Catalog(storage)
    item_id = new_id(NOW)
    with (
        pytest.raises(type(raised)),
        catalog.writer("backup", item_id, backup_prefix(item_id)) as item,
    ):
        store_two(item, identity)
        assert len(leftovers(storage, item_id)) == 2
        raise raised
    assert leftovers(storage, item_id) == []
    assert catalog.listing("backup").items == []


def test_a_storage_fault_on_the_second_object_leaves_nothing(
    storage: Storage, identity: Identity
) -> None:
    faulty = FaultyStorage(storage, fail_put_after_bytes=50_000)
    catalog = Catalog(faulty)
    item_id = new_id(NOW)
    incompressible = random.Random(1).randbytes(400_000)
    with (
        pytest.raises(StorageError, match="injected fault"),
        catalog.writer("backup", item_id, backup_prefix(item_id)) as item,
    ):
        store_two(item, identity, second=incompressible)
    assert leftovers(storage, item_id) == []
    assert list(storage.pending_uploads("")) == []
    assert Catalog(storage).listing("backup").items == []


def test_a_manifest_listing_an_object_with_the_wrong_size_is_refused(
    storage: Storage, identity: Identity
) -> None:
    catalog = Catalog(storage)
    item_id = new_id(NOW)
    with (
        pytest.raises(IntegrityError, match="object dump"),
        catalog.writer("backup", item_id, backup_prefix(item_id)) as item,
    ):
        store_two(item, identity)
        good = manifest(item)
        dump = good.objects[0]
        wrong = ObjectEntry.model_validate({**dump.model_dump(), "size": dump.size + 1})
        item.commit(good.model_copy(update={"objects": [wrong, good.objects[1]]}), seal="dump")
    assert leftovers(storage, item_id) == []
    with pytest.raises(UsageError, match="no complete backup"):
        catalog.get(item_id)


def test_an_object_the_writer_did_not_store_is_refused(
    storage: Storage, identity: Identity
) -> None:
    catalog = Catalog(storage)
    item_id, other_id = new_id(NOW), new_id(NOW)
    with catalog.writer("backup", other_id, backup_prefix(other_id)) as other:
        store_two(other, identity)
        other.commit(manifest(other), seal="dump")
    with (
        pytest.raises(IntegrityError, match="as it was not stored"),
        catalog.writer("backup", item_id, backup_prefix(item_id)) as item,
    ):
        item.store("dump", "dump.bin.age", [b"x"], recipients=[identity.recipient()], level=1)
        borrowed = manifest(item).model_copy(update={"objects": manifest(other).objects})
        item.commit(borrowed, seal="dump")
    assert leftovers(storage, item_id) == []
    assert [m.id for m in catalog.listing("backup").items] == [other_id]


def test_a_failure_after_the_commit_keeps_the_complete_item(
    storage: Storage, identity: Identity
) -> None:
    catalog = Catalog(storage)
    item_id = new_id(NOW)
    with pytest.raises(Interrupted), catalog.writer("backup", item_id, backup_prefix(item_id)) as w:
        store_two(w, identity)
        w.commit(manifest(w), seal="dump")
        raise Interrupted("after the commit")
    assert catalog.get(item_id).id == item_id
    assert len(leftovers(storage, item_id)) == 3


def test_an_item_without_objects_is_committed_unsealed(storage: Storage) -> None:
    item_id = new_id(NOW)
    prefix = f"archive/events/2026/12/{item_id}/"
    with Catalog(storage).writer("purge", item_id, prefix) as record:
        done = record.commit(
            PurgeManifest(
                id=item_id,
                created_at=NOW,
                finished_at=NOW,
                tool_version="test",
                policy="events",
                table="public.events",
                cutoff=NOW.isoformat(),
                deleted=3,
            ),
            seal=None,
        )
    assert done.seal is None
    assert [info.key for info in storage.list(prefix)] == [prefix + "manifest.json"]


def test_a_manifest_leaving_out_a_stored_object_is_refused(
    storage: Storage, identity: Identity
) -> None:
    catalog = Catalog(storage)
    item_id = new_id(NOW)
    with (
        pytest.raises(ValueError, match="missing from the manifest"),
        catalog.writer("backup", item_id, backup_prefix(item_id)) as item,
    ):
        store_two(item, identity)
        partial = manifest(item)
        item.commit(partial.model_copy(update={"objects": partial.objects[:1]}), seal="dump")
    assert leftovers(storage, item_id) == []
