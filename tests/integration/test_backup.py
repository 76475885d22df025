"""Backups end to end through the CLI: real PostgreSQL, real storage (local and moto S3)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import psycopg

from drtool.catalog.manifest import ObjectEntry
from drtool.config import Config
from drtool.crypto.keys import parse_identity_file
from drtool.pipeline.store import StoredObject, load
from drtool.storage import open_storage
from tests.fixtures.cli import Setup


def exact_counts(dsn: str, password: str | None, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(dsn, password=password) as conn:
        out = {}
        for name in tables:
            schema, table = name.split(".", 1)
            row = conn.execute(
                psycopg.sql.SQL("select count(*) from {}.{}").format(
                    psycopg.sql.Identifier(schema), psycopg.sql.Identifier(table)
                )
            ).fetchone()
            assert row is not None
            out[name] = row[0]
        return out


def stored_object(setup: Setup, manifest: dict[str, Any], name: str) -> tuple[Any, StoredObject]:
    doc = {**setup.doc, "storage": dict(setup.doc["storage"]), "base_dir": setup.dir}
    if "AWS_ACCESS_KEY_ID" in setup.env:
        doc["storage"]["access_key_id"] = setup.env["AWS_ACCESS_KEY_ID"]
        doc["storage"]["secret_access_key"] = setup.env["AWS_SECRET_ACCESS_KEY"]
    cfg = Config.model_validate(doc)
    storage = open_storage(cfg.storage, setup.dir)
    entry = next(o for o in manifest["objects"] if o["name"] == name)
    return storage, ObjectEntry.model_validate(entry).stored()


def test_backup_round_trip_through_each_backend(
    any_setup: Setup, sample_db: Any, empty_db: Any
) -> None:
    out = any_setup.run("backup", "--label", "round-trip")
    backup_id = out.stdout.strip().splitlines()[-1]
    listed = any_setup.run("list", "--json").json
    assert [i["id"] for i in listed["items"]] == [backup_id]
    assert listed["items"][0]["label"] == "round-trip"
    manifest = any_setup.run("show", backup_id, "--json").json
    assert (
        manifest["id"] == backup_id
        and manifest["kind"] == "backup"
        and manifest["status"] == "complete"
    )
    for field in (
        "created_at",
        "snapshot_at",
        "server_version",
        "pg_dump_version",
        "database",
        "timings",
    ):
        assert manifest[field], field
    # Row counts are exact: equal to count(*) of the (unchanged) database.
    assert manifest["tables"] == exact_counts(
        sample_db.dsn, sample_db.password, list(manifest["tables"])
    )
    assert manifest["tables"]["public.raw_events"] > 0
    # The stored dump decrypts, authenticates, matches the manifest and restores with pg_restore.
    storage, dump = stored_object(any_setup, manifest, "dump")
    identities = parse_identity_file(any_setup.identity_path)
    restore = subprocess.Popen(
        ["pg_restore", "--no-owner", "--exit-on-error", "-d", empty_db.dsn],
        stdin=subprocess.PIPE,
        env={**empty_db.env},
    )
    assert restore.stdin is not None
    for chunk in load(storage, dump, identities):
        restore.stdin.write(chunk)
    restore.stdin.close()
    assert restore.wait() == 0
    restored = exact_counts(empty_db.dsn, empty_db.password, list(manifest["tables"]))
    assert restored == manifest["tables"]


def test_manifest_records_globals_and_encryption_without_secrets(
    file_setup: Setup, sample_db: Any
) -> None:
    backup_id = file_setup.run("backup").stdout.strip().splitlines()[-1]
    manifest_path = file_setup.dir / "storage" / "backups" / backup_id / "manifest.json"
    raw = manifest_path.read_text() if manifest_path.exists() else None
    manifest = file_setup.run("show", backup_id, "--json").json
    assert manifest["globals"]["status"] == "stored"
    assert [o["name"] for o in manifest["objects"]] == ["dump", "globals", "recovery"]
    assert manifest["encryption"]["format"] == "age-v1-x25519"
    assert len(manifest["encryption"]["recipients"]) == 1
    text = raw or json.dumps(manifest)
    assert sample_db.password not in text
    assert "AGE-SECRET-KEY" not in text
