"""A plain object in an item (a backup's RECOVERY.md): stored as is, recorded with
``encrypted: false``, sealed like any other; entries without the marker keep their shape."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drtool.catalog.manifest import BackupManifest, ObjectEntry, parse_manifest
from drtool.catalog.writer import ItemWriter
from drtool.crypto.keys import generate_identity
from drtool.errors import IntegrityError
from drtool.storage.local import LocalStorage

ITEM = "20261205T100000.000Z-abcd"
PREFIX = f"backups/{ITEM}/"
TEXT = b"# Recovering backup\n"


def _manifest(writer: ItemWriter) -> BackupManifest:
    now = datetime(2026, 12, 5, 10, tzinfo=UTC)
    return BackupManifest(
        id=ITEM, created_at=now, finished_at=now, tool_version="test", objects=writer.entries()
    )


def test_a_plain_object_is_stored_as_is_and_listed_with_the_marker(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    recipient = generate_identity().recipient()
    with ItemWriter(storage, "backup", ITEM, PREFIX) as writer:
        writer.store("dump", "dump.pgdump.zst.age", [b"rows"], recipients=[recipient], level=1)
        writer.store_plain("recovery", "RECOVERY.md", TEXT)
        committed = writer.commit(_manifest(writer), seal="dump")
    assert (tmp_path / PREFIX / "RECOVERY.md").read_bytes() == TEXT
    doc = json.loads((tmp_path / PREFIX / "manifest.json").read_bytes())
    dump, recovery = doc["objects"]
    assert "encrypted" not in dump
    digest = hashlib.sha256(TEXT).hexdigest()
    assert recovery == {
        "name": "recovery",
        "key": PREFIX + "RECOVERY.md",
        "size": len(TEXT),
        "sha256": digest,
        "plain_size": len(TEXT),
        "plain_sha256": digest,
        "encrypted": False,
    }
    parsed = parse_manifest((tmp_path / PREFIX / "manifest.json").read_bytes(), "test")
    assert parsed.to_json() == committed.to_json()
    assert [o.encrypted for o in parsed.objects] == [True, False]


def test_a_plain_object_listed_with_other_bytes_is_refused(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    recipient = generate_identity().recipient()
    with ItemWriter(storage, "backup", ITEM, PREFIX) as writer:
        writer.store("dump", "dump.pgdump.zst.age", [b"rows"], recipients=[recipient], level=1)
        writer.store_plain("recovery", "RECOVERY.md", TEXT)
        manifest = _manifest(writer)
        wrong = manifest.objects[1].model_copy(update={"sha256": "0" * 64})
        forged = manifest.model_copy(update={"objects": [manifest.objects[0], wrong]})
        with pytest.raises(IntegrityError):
            writer.commit(forged, seal="dump")
        writer.discard()


def test_an_entry_without_the_marker_is_encrypted_and_written_back_without_it() -> None:
    doc = {"name": "dump", "key": "k", "size": 1, "sha256": "a" * 64}
    doc |= {"plain_size": 1, "plain_sha256": "b" * 64}
    entry = ObjectEntry.model_validate(doc)
    assert entry.encrypted is True
    assert entry.model_dump(mode="json") == doc
