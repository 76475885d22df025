"""RECOVERY.md beside every backup: listed in the sealed manifest, free of secrets, and good
enough to follow literally with standard tools (aws/cp, age, zstd, psql, pg_restore) alone."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cli import Setup
from tests.integration.restore_support import checksums
from tests.integration.test_break_glass import require
from tests.integration.test_prune import storage_of

RECOVERY_KEY = "backups/{id}/RECOVERY.md"
BUNDLE_SECRET = "bundle-secret-value-7f3a9c"
SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.S | re.M)
PLACEHOLDER = re.compile(r"<[A-Z_]+>")


def backup(setup: Setup, *args: str) -> tuple[str, dict[str, Any], str]:
    """A backup: its id, its manifest and its RECOVERY.md as stored."""
    backup_id = setup.run("backup", *args).stdout.strip().splitlines()[-1]
    manifest = setup.run("show", backup_id, "--json").json
    data = b"".join(storage_of(setup).get(RECOVERY_KEY.format(id=backup_id)))
    return backup_id, manifest, data.decode("utf-8")


def distinct_s3_credentials(setup: Setup) -> None:
    """Credentials that cannot appear by chance (moto accepts any)."""
    if "AWS_ACCESS_KEY_ID" in setup.env:
        setup.env["AWS_ACCESS_KEY_ID"] = "AKIARECOVERYMDTEST01"
        setup.env["AWS_SECRET_ACCESS_KEY"] = "rEcOvErY-md-s3-secret-key-0123456789abcd"


def test_recovery_md_is_listed_in_the_sealed_manifest_and_holds_no_secret(
    any_setup: Setup, sample_db: Any
) -> None:
    distinct_s3_credentials(any_setup)
    any_setup.doc["bundle"] = {"env": ["APP_ENCRYPTION_KEY"]}
    any_setup.env["APP_ENCRYPTION_KEY"] = BUNDLE_SECRET
    any_setup.write()
    backup_id, manifest, text = backup(any_setup)

    entry = next(o for o in manifest["objects"] if o["name"] == "recovery")
    data = text.encode("utf-8")
    assert entry["key"] == RECOVERY_KEY.format(id=backup_id)
    assert entry["encrypted"] is False
    assert entry["size"] == entry["plain_size"] == len(data)
    assert entry["sha256"] == entry["plain_sha256"] == hashlib.sha256(data).hexdigest()
    # Entries of encrypted objects keep their old shape: no marker.
    assert all("encrypted" not in o for o in manifest["objects"] if o["name"] != "recovery")

    secrets = [
        any_setup.identity_path.read_text().strip(),
        sample_db.password,
        BUNDLE_SECRET,
        *(
            any_setup.env[k]
            for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
            if k in any_setup.env
        ),
    ]
    for secret in secrets:
        assert secret and secret not in text
    assert not re.search(r"AGE-SECRET-KEY-1[0-9A-Z]{20}", text)  # no identity at all

    assert backup_id in text
    assert manifest["database"] in text
    assert manifest["server_version"] in text
    for fingerprint in manifest["encryption"]["recipients"]:
        assert fingerprint in text
    assert len(manifest["tables"]) > 5
    for table, rows in manifest["tables"].items():
        assert re.search(rf"^\| `{re.escape(table)}` \| {rows}\b", text, re.M), table
    for obj in manifest["objects"]:
        if obj["name"] != "recovery":
            assert obj["sha256"] in text
            assert obj["key"].rsplit("/", 1)[-1] in text
    for promise in ("Sessions", "Supabase Storage", "storage.objects", "Large objects"):
        assert promise in text
    assert "bundle.tar.zst.age" in text  # the secrets are in the encrypted bundle only
    assert f"drtool verify {backup_id} --deep" in text
    assert "drills/" in text


def follow(text: str, substitutions: dict[str, str]) -> str:
    """The shell blocks of RECOVERY.md, in order, with its documented placeholders replaced:
    a placeholder left over fails the test (the doc uses one it does not document)."""
    documented = set(re.findall(r"^\| `(<[A-Z_]+>)` \|", text, re.M))
    assert set(substitutions) <= documented
    script = "\n".join(SHELL_BLOCK.findall(text))
    for placeholder, value in substitutions.items():
        script = script.replace(placeholder, value)
    assert not PLACEHOLDER.search(script), script
    return script


def run_literally(text: str, setup: Setup, target: Any, tmp_path: Path) -> str:
    """Every command block of ``text``, in order, with bash, its placeholders filled in; only
    the reader's environment (their S3 credentials and the target's password). Its stdout."""
    for tool in ("age", "zstd", "pg_restore", "psql", "sha256sum"):
        require(tool)
    if setup.doc["storage"]["url"].startswith("s3://"):
        require("aws")
    script = follow(
        text,
        {
            "<IDENTITY_FILE>": str(setup.identity_path),
            "<WORK_DIR>": str(tmp_path / "copy"),
            "<TARGET_DSN>": target.dsn,
        },
    )
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        env={**os.environ, **setup.env, **target.env},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, f"{script}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done.stdout


def assert_same_rows(manifest: dict[str, Any], restored: Any, source: Any) -> None:
    tables = list(manifest["tables"])
    assert checksums(restored.dsn, restored.password, tables) == checksums(
        source.dsn, source.password, tables
    )


def test_following_recovery_md_literally_restores_the_backup_exactly(
    any_setup: Setup, sample_db: Any, empty_db: Any, tmp_path: Path
) -> None:
    _, manifest, text = backup(any_setup)
    out = run_literally(text, any_setup, empty_db, tmp_path)
    assert out.count(": OK") >= 2  # sha256sum checked the dump and the globals
    assert_same_rows(manifest, empty_db, sample_db)


def test_following_the_recovery_md_of_a_parallel_backup_restores_it_exactly(
    file_setup: Setup, sample_db: Any, empty_db: Any, tmp_path: Path
) -> None:
    """`backup --jobs 2`: the schema, one COPY script per table part, then post-data."""
    _, manifest, text = backup(file_setup, "--jobs", "2")
    assert manifest["dump_format"] == "parallel"
    run_literally(text, file_setup, empty_db, tmp_path)
    assert_same_rows(manifest, empty_db, sample_db)


def test_verify_checks_recovery_md_and_fails_when_it_is_edited(file_setup: Setup) -> None:
    backup_id, _, text = backup(file_setup)
    file_setup.run("verify", backup_id)
    deep = file_setup.run("verify", backup_id, "--deep", "--json").json
    assert deep["ok"] is True

    path = Path(file_setup.doc["storage"]["url"].removeprefix("file://"))
    path = path / RECOVERY_KEY.format(id=backup_id)
    path.write_text(text.replace("pg_restore --no-owner", "pg_restore --clean --no-owner"))
    for deep_flag in ([], ["--deep"]):
        failed = file_setup.run("verify", backup_id, *deep_flag, "--json", expect=3).json
        problems = [p for item in failed["items"] for p in item["problems"]]
        assert [p["object"] for p in problems] == ["recovery"], json.dumps(failed)


@pytest.mark.parametrize("deep", [False, True])
def test_verify_reports_a_missing_recovery_md(file_setup: Setup, deep: bool) -> None:
    backup_id, _, _ = backup(file_setup)
    path = Path(file_setup.doc["storage"]["url"].removeprefix("file://"))
    (path / RECOVERY_KEY.format(id=backup_id)).unlink()
    args = ["--deep"] if deep else []
    failed = file_setup.run("verify", backup_id, *args, "--json", expect=3).json
    assert "missing" in json.dumps(failed)
