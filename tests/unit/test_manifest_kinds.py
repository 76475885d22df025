"""Typed manifests, one model per kind: the manifests drtool already wrote (golden files made by
a real backup and export with the code before the models were split) still parse, re-serialise
byte for byte and verify their seals; kind-specific fields are typed; future fields survive."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drtool.catalog.manifest import (
    ArchiveManifest,
    BackupManifest,
    ExportManifest,
    PurgeManifest,
    canonical,
    expect_kind,
    parse_manifest,
)
from drtool.crypto.age import decrypt, open_seal_key, seal
from drtool.crypto.fingerprint import FingerprintParams
from drtool.crypto.keys import parse_identity_file
from drtool.errors import IntegrityError
from drtool.pipeline.stages import decompress

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "manifests"
NOW = datetime(2026, 12, 5, tzinfo=UTC)


def golden(kind: str) -> tuple[bytes, dict[str, Any]]:
    data = (GOLDEN / kind / "manifest.json").read_bytes()
    return data, json.loads(data)


def seal_key(kind: str, object_file: str) -> bytes:
    identities = parse_identity_file(GOLDEN / "identity.txt")
    return open_seal_key([(GOLDEN / kind / object_file).read_bytes()], identities)


def test_a_backup_manifest_sealed_before_the_split_parses_typed_and_its_seal_verifies() -> None:
    data, _doc = golden("backup")
    manifest = parse_manifest(data, "golden backup")
    assert isinstance(manifest, BackupManifest)
    assert manifest.server_major == 15
    assert manifest.globals == {"status": "stored"}
    assert manifest.dump_format == "custom"
    assert manifest.platform is None and manifest.platform_details is None
    assert manifest.warnings == [] and manifest.excluded_table_data == {}
    assert manifest.seal is not None and manifest.seal_object == "dump"
    key = seal_key("backup", "dump.pgdump.zst.age")
    assert manifest.seal_valid(key)
    # The typed model writes exactly the bytes the old writer wrote, and seals them the same.
    assert manifest.to_json() == data
    assert manifest.sealed(key, "dump").to_json() == data


def test_an_export_manifest_sealed_before_the_split_parses_typed_and_its_seal_verifies() -> None:
    data, _doc = golden("export")
    manifest = parse_manifest(data, "golden export")
    assert isinstance(manifest, ExportManifest)
    assert manifest.user_id == "u1"
    assert manifest.users_table == "public.users"
    assert manifest.table_details is not None
    assert [d["table"] for d in manifest.table_details] == ["public.users", "public.orders"]
    key = seal_key("export", "rows.copy.zst.age")
    assert manifest.seal_valid(key)
    assert manifest.to_json() == data
    assert manifest.sealed(key, "rows").to_json() == data


def test_archive_and_purge_manifests_written_before_the_split_parse_typed() -> None:
    data, _doc = golden("archive")
    batch = parse_manifest(data, "golden archive batch")
    assert isinstance(batch, ArchiveManifest)
    assert (batch.policy, batch.table, batch.rows) == ("events", "public.events", 4)
    assert batch.where == {"state": ["done"], "tenant": [0, 1]}
    assert batch.pk_first == ["4"] and batch.copy_settings["timezone"] == "UTC"
    key = seal_key("archive", "rows.copy.zst.age")
    assert batch.seal_valid(key)
    assert batch.to_json() == data
    assert batch.sealed(key, "rows").to_json() == data
    data, _doc = golden("purge")
    purge = parse_manifest(data, "golden purge record")
    assert isinstance(purge, PurgeManifest)
    assert (purge.deleted, purge.batches, purge.interrupted) == (5, 1, False)
    assert purge.seal is None
    assert purge.to_json() == data


def test_a_field_from_a_newer_minor_writer_is_kept_and_the_seal_still_verifies() -> None:
    _data, doc = golden("backup")
    key = seal_key("backup", "dump.pgdump.zst.age")
    doc["replica"] = {"region": "dr-1"}
    doc["seal"]["mac"] = seal(canonical(doc), key)
    manifest = parse_manifest(json.dumps(doc).encode(), "newer")
    assert isinstance(manifest, BackupManifest)
    assert (manifest.model_extra or {})["replica"] == {"region": "dr-1"}
    assert manifest.seal_valid(key)
    assert json.loads(manifest.to_json()) == doc


def test_an_older_backup_manifest_without_later_fields_parses_and_keeps_its_shape() -> None:
    _data, doc = golden("backup")
    for name in ("platform", "platform_details", "warnings", "excluded_schemas", "dump_format"):
        del doc[name]
    del doc["seal"]
    manifest = parse_manifest(json.dumps(doc).encode(), "older")
    assert isinstance(manifest, BackupManifest)
    assert manifest.platform is None and manifest.warnings == []
    assert manifest.dump_format == "custom"
    assert manifest.seal is None and manifest.seal_object is None
    # Defaults are not written back: the document keeps the fields it had.
    assert json.loads(manifest.to_json()) == doc


@pytest.mark.parametrize(
    ("field", "value"),
    [("server_major", "fifteen"), ("globals", ["stored"]), ("warnings", "one"), ("seal", 3)],
)
def test_a_mistyped_kind_field_is_an_integrity_error_naming_it(field: str, value: object) -> None:
    _data, doc = golden("backup")
    doc[field] = value
    with pytest.raises(IntegrityError, match=field):
        parse_manifest(json.dumps(doc).encode(), "m")


def test_an_unknown_kind_is_an_integrity_error() -> None:
    _data, doc = golden("backup")
    doc["kind"] = "snapshot"
    with pytest.raises(IntegrityError, match="manifest is invalid"):
        parse_manifest(json.dumps(doc).encode(), "m")


def archive_doc() -> dict[str, Any]:
    manifest = ArchiveManifest(
        id="20261205T000000.000Z-abcd",
        created_at=NOW,
        finished_at=NOW,
        tool_version="0.1.0",
        policy="events",
        table="public.events",
        columns=["id", "at"],
        pk=["id"],
        time_column="at",
        cutoff=NOW.isoformat(),
        pk_first=["1"],
        pk_last=["9"],
        rows=9,
        rows_sha256="c" * 64,
    )
    return dict(json.loads(manifest.to_json()))


def test_archive_and_purge_manifests_parse_to_their_models() -> None:
    doc = archive_doc()
    manifest = parse_manifest(json.dumps(doc).encode(), "a")
    assert isinstance(manifest, ArchiveManifest)
    assert (manifest.rows, manifest.rows_sha256, manifest.rows_digest) == (9, "c" * 64, None)
    assert "rows_digest" not in doc  # never set, never written (older batches lack it too)
    purge = PurgeManifest(
        id="20261205T000000.000Z-abce",
        created_at=NOW,
        finished_at=NOW,
        tool_version="0.1.0",
        policy="events",
        table="public.events",
        cutoff=NOW.isoformat(),
        deleted=5,
        batches=1,
        interrupted=False,
    )
    parsed = parse_manifest(purge.to_json(), "p")
    assert isinstance(parsed, PurgeManifest) and parsed.deleted == 5
    assert "seal" not in json.loads(purge.to_json())  # purge records are not sealed


def test_an_archive_manifest_missing_its_table_is_refused() -> None:
    doc = copy.deepcopy(archive_doc())
    del doc["table"]
    with pytest.raises(IntegrityError, match="table"):
        parse_manifest(json.dumps(doc).encode(), "a")


def test_expect_kind_narrows_or_refuses() -> None:
    data, _doc = golden("export")
    manifest = parse_manifest(data, "e")
    assert expect_kind(manifest, ExportManifest).user_id == "u1"
    with pytest.raises(IntegrityError, match="not a backup manifest"):
        expect_kind(manifest, BackupManifest)


def test_a_backup_manifest_with_a_bundle_parses_typed_and_its_fingerprints_hold() -> None:
    """Golden `backup-bundle/` (a real backup with a bundle: one file, one variable, both
    throwaway values; the dump cut to its age header, which is all the seal needs)."""
    data, _doc = golden("backup-bundle")
    manifest = parse_manifest(data, "golden backup with a bundle")
    assert isinstance(manifest, BackupManifest) and manifest.bundle is not None
    assert manifest.seal_valid(seal_key("backup-bundle", "dump.header.age"))
    assert manifest.to_json() == data
    info = manifest.bundle
    params = FingerprintParams.from_doc(info.fingerprint)
    by_name = {e.name: e for e in info.entries}
    env = by_name["GOLDEN_KEY"]
    assert env.kind == "env" and env.size == len(b"golden-not-a-secret")
    assert params.fingerprint("env", "GOLDEN_KEY", b"golden-not-a-secret") == env.fingerprint
    content = b"GOLDEN_FILE_VALUE=not-a-secret\n"
    digest = hashlib.sha256(content).digest()
    assert params.fingerprint("file", "app.env", digest) == by_name["app.env"].fingerprint
    # The bundle object is a standard age file of a zstd tar stream.
    stored = (GOLDEN / "backup-bundle" / "bundle.tar.zst.age").read_bytes()
    entry = manifest.object("bundle")
    assert hashlib.sha256(stored).hexdigest() == entry.sha256
    identities = parse_identity_file(GOLDEN / "identity.txt")
    plain = b"".join(decompress(decrypt([stored], identities)))
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        assert tar.getnames() == ["bundle.json", "env", "files/app.env"]
        member = tar.extractfile("files/app.env")
        assert member is not None and member.read() == content
        env_member = tar.extractfile("env")
        assert env_member is not None
        assert env_member.read() == b"GOLDEN_KEY='golden-not-a-secret'\n"
