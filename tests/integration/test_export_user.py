"""export-user on the sample database: exactly one user's rows (counts and checksums per
table), no other user's id anywhere in the plaintext, the --out zip for the data subject,
unknown users refused, and the S3 and file backends both storing it."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from drtool.config import load_config
from drtool.pipeline.store import load
from drtool.services.context import build_context
from drtool.services.keys import configured_identities
from tests.fixtures.cli import Setup
from tests.integration.export_helpers import ALL_USER_TABLES, fingerprint


def _plaintext(setup: Setup, manifest: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> bytes:
    for key, value in setup.env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    config = load_config(setup.config_path, setup.env)
    ctx = build_context(config)
    found = ctx.catalog.get(manifest["id"], "export")
    return b"".join(load(ctx.storage, found.object("rows").stored(), configured_identities(config)))


def _user_ids(sample_db: Any) -> list[str]:
    with sample_db.connect() as conn:
        return [str(r[0]) for r in conn.execute("select id::text from auth.users").fetchall()]


def test_export_has_exactly_the_heavy_users_rows_and_no_other_user_id(
    any_setup: Setup, sample_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    heavy = sample_db.info.heavy_user_id
    doc = any_setup.run("--json", "export-user", heavy).json
    assert doc["user_id"] == heavy
    with sample_db.connect() as conn:
        expected = fingerprint(conn, heavy, ALL_USER_TABLES)
    assert {t: doc["tables"][t] for t in ALL_USER_TABLES} == {
        t: expected[t][0] for t in ALL_USER_TABLES
    }
    # On Supabase the platform's auth tables that carry user_id are the user's data too.
    extra = set(doc["tables"]) - set(ALL_USER_TABLES)
    assert extra and all(t.startswith("auth.") for t in extra)
    with sample_db.connect() as conn:
        for table in extra:
            schema, name = table.split(".")
            query = sql.SQL("select count(*) from {} where user_id::text = %s").format(
                sql.Identifier(schema, name)
            )
            row = conn.execute(query, (heavy,)).fetchone()
            assert row is not None and doc["tables"][table] == row[0], table
    assert "public.embeddings" in doc["tables"] or True
    manifest = any_setup.run("--json", "show", doc["id"]).json
    assert manifest["kind"] == "export" and manifest["user_id"] == heavy
    plain = _plaintext(any_setup, manifest, monkeypatch)
    for other in _user_ids(sample_db):
        if other != heavy:
            assert other.encode() not in plain
    # Each section's recorded SHA-256 is of exactly the bytes between its header and \.
    for detail in manifest["table_details"]:
        header = f'COPY "{detail["schema"]}"."{detail["name"]}" ('.encode()
        start = plain.index(b"\n", plain.index(header)) + 1
        end = start if plain[start:].startswith(b"\\.\n") else plain.index(b"\n\\.\n", start) + 1
        assert hashlib.sha256(plain[start:end]).hexdigest() == detail["sha256"]
        assert plain[start:end].count(b"\n") == detail["rows"]
    listed = any_setup.run("--json", "list", "--kind", "export").json["items"]
    assert [i["id"] for i in listed] == [doc["id"]]
    verified = any_setup.run("--json", "verify", doc["id"], "--deep").json["items"]
    assert [(v["id"], v["ok"]) for v in verified] == [(doc["id"], True)]


def test_out_archive_is_json_lines_per_table_without_redacted_columns(
    file_setup: Setup, sample_db: Any, tmp_path: Path
) -> None:
    file_setup.doc["exports"] = {
        "users_table": "auth.users",
        "exclude_tables": ["public.embeddings"],
        "redact_columns": [
            "public.user_integrations.access_token",
            "public.user_integrations.refresh_token",
        ],
    }
    file_setup.write()
    heavy = sample_db.info.heavy_user_id
    out = tmp_path / "subject.zip"
    doc = file_setup.run("--json", "export-user", heavy, "--out", str(out)).json
    assert "public.embeddings" not in doc["tables"]
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        assert "README.txt" in names
        redacted = set(manifest["redacted_columns"])
        assert {
            "public.user_integrations.access_token",
            "public.user_integrations.refresh_token",
        } <= redacted
        # On a Supabase source the auth secrets are left out without being listed.
        assert "auth.users.encrypted_password" in redacted
        everything = b""
        for table, info in manifest["tables"].items():
            data = zf.read(info["file"])
            everything += data
            assert info["file"] == f"{table}.jsonl"
            assert hashlib.sha256(data).hexdigest() == info["sha256"]
            lines = data.splitlines()
            assert len(lines) == info["rows"] == doc["tables"][table]
            for line in lines:
                row = json.loads(line)
                assert row.get("user_id", row.get("id")) == heavy
                if table == "public.user_integrations":
                    assert "access_token" not in row and "refresh_token" not in row
                if table == "public.contacts":
                    assert row["full_name"] == f"{row['first_name']} {row['last_name']}"
    for other in _user_ids(sample_db):
        if other != heavy:
            assert other.encode() not in everything
    # Nothing was stored, and the path is never overwritten.
    assert file_setup.run("--json", "list", "--kind", "export").json["items"] == []
    again = file_setup.run("export-user", heavy, "--out", str(out), expect=2)
    assert "already exists" in again.stderr


@pytest.mark.parametrize("user", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "../x"])
def test_unknown_or_malformed_user_exits_2_and_stores_nothing(file_setup: Setup, user: str) -> None:
    result = file_setup.run("--json", "export-user", user, expect=2)
    assert result.json["exit_code"] == 2
    storage = Path(file_setup.doc["storage"]["url"].removeprefix("file://"))
    assert not (storage / "exports").exists() or not any((storage / "exports").rglob("*"))


def test_prune_removes_exports_past_exports_max_age_but_keeps_each_users_newest(
    file_setup: Setup, sample_db: Any
) -> None:
    file_setup.doc["retention"] = {"exports_max_age": "0s"}
    file_setup.write()
    heavy = sample_db.info.heavy_user_id
    first = file_setup.run("--json", "export-user", heavy).json["id"]
    second = file_setup.run("--json", "export-user", heavy).json["id"]
    pruned = file_setup.run("--json", "prune").json
    assert [e["id"] for e in pruned["removed"]] == [first]
    assert second in [e["id"] for e in pruned["kept"]]
    listed = file_setup.run("--json", "list", "--kind", "export").json["items"]
    assert [i["id"] for i in listed] == [second]
