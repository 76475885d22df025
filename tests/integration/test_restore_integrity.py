"""Integrity before trust: a corrupted, truncated, swapped or edited backup, or a wrong key,
makes `restore` exit 3 and leaves the target exactly as it was (here: empty)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from drtool.config import load_config
from drtool.crypto.age import ENCRYPTED_CHUNK_SIZE
from drtool.crypto.keys import generate_identity, write_identity_file
from drtool.errors import IntegrityError
from drtool.services.context import Context, build_context
from drtool.services.restore.run import RestoreRequest, run_restore
from drtool.storage.faults import FaultyStorage
from tests.fixtures.cli import Setup
from tests.fixtures.pg import TEST_PASSWORD
from tests.integration.restore_support import (
    backup,
    dump_path,
    payload_start,
    read_manifest,
    restore_records,
    target_password,  # noqa: F401 (autouse)
    user_tables,
    with_password,
    write_manifest,
)


def restore_fails_with_integrity_error(setup: Setup, backup_id: str, db: Any) -> str:
    to = db.dsn
    out = setup.run("restore", backup_id, "--to", to, expect=3)
    assert user_tables(db.dsn, TEST_PASSWORD) == []
    assert TEST_PASSWORD not in out.stdout + out.stderr
    return out.stderr


def server_saw_an_aborted_load(db: Any, wait_s: float = 5.0) -> bool:
    markers = ("COPY", "open transaction", "protocol synchronization")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        lines = db.cluster.log_path.read_text(errors="replace").splitlines()
        if any(f"@{db.name} " in line and any(m in line for m in markers) for line in lines):
            return True
        time.sleep(0.1)
    return False


def test_flipped_byte_mid_object_rolls_back_the_streamed_restore(
    file_setup: Setup, empty_db: Any
) -> None:
    backup_id = backup(file_setup)
    path = dump_path(file_setup, backup_id)
    data = bytearray(path.read_bytes())
    start = payload_start(bytes(data))
    chunks = (len(data) - start) // ENCRYPTED_CHUNK_SIZE
    assert chunks >= 8, "the sample dump must span several chunks"
    # Three quarters in: pg_restore has created the tables and loaded rows by then.
    victim = (chunks * 3) // 4
    data[start + victim * ENCRYPTED_CHUNK_SIZE + 1000] ^= 0x01
    path.write_bytes(bytes(data))
    stderr = restore_fails_with_integrity_error(file_setup, backup_id, empty_db)
    assert f"chunk {victim}" in stderr
    # The authenticated chunks before the bad one did reach pg_restore: the server saw its
    # transaction cut off mid-load, and rolled it back (the target has no table).
    assert server_saw_an_aborted_load(empty_db)
    [record] = restore_records(file_setup, backup_id)
    assert record["ok"] is False


def test_truncation_at_a_chunk_boundary_is_refused_before_any_change(
    file_setup: Setup, empty_db: Any
) -> None:
    backup_id = backup(file_setup)
    path = dump_path(file_setup, backup_id)
    data = path.read_bytes()
    cut = payload_start(data) + 5 * ENCRYPTED_CHUNK_SIZE
    path.write_bytes(data[:cut])
    stderr = restore_fails_with_integrity_error(file_setup, backup_id, empty_db)
    assert "bytes in storage" in stderr
    assert restore_records(file_setup, backup_id) == []


class CutStream(FaultyStorage):
    """A download that ends early without an error (a proxy closing the body), while ``stat``
    still reports the full size: only the stream itself can tell."""

    def __init__(self, inner: Any, key_suffix: str, cut: int) -> None:
        super().__init__(inner)
        self.key_suffix = key_suffix
        self.cut = cut

    def get(self, key: str) -> Iterator[bytes]:
        stream = self.inner.get(key)
        if not key.endswith(self.key_suffix):
            return stream
        return self._cut_silently(stream)

    def _cut_silently(self, stream: Iterator[bytes]) -> Iterator[bytes]:
        passed = 0
        for chunk in stream:
            if passed + len(chunk) >= self.cut:
                yield chunk[: self.cut - passed]
                return
            passed += len(chunk)
            yield chunk


def test_stream_ending_at_a_chunk_boundary_rolls_back(file_setup: Setup, empty_db: Any) -> None:
    backup_id = backup(file_setup)
    data = dump_path(file_setup, backup_id).read_bytes()
    chunks = (len(data) - payload_start(data)) // ENCRYPTED_CHUNK_SIZE
    cut = payload_start(data) + (chunks - 2) * ENCRYPTED_CHUNK_SIZE
    ctx = build_context(load_config(file_setup.config_path, environ=file_setup.env))
    faulty = Context(ctx.config, CutStream(ctx.storage, ".age", cut))
    request = RestoreRequest(ref=backup_id, to_dsn=with_password(empty_db.dsn, TEST_PASSWORD))
    with pytest.raises(IntegrityError) as err:
        run_restore(faulty, request)
    assert err.value.obj == "dump" and err.value.chunk == chunks - 2
    assert user_tables(empty_db.dsn, TEST_PASSWORD) == []


def test_dump_swapped_in_from_another_backup_is_refused_before_any_change(
    file_setup: Setup, empty_db: Any
) -> None:
    first, second = backup(file_setup), backup(file_setup)
    shutil.copyfile(dump_path(file_setup, second), dump_path(file_setup, first))
    # Make the manifest agree with the swapped bytes, as an attacker would: only the seal
    # (keyed by the original dump's file key) can tell.
    doc = read_manifest(file_setup, first)
    theirs = {o["name"]: o for o in read_manifest(file_setup, second)["objects"]}
    for entry in doc["objects"]:
        if entry["name"] == "dump":
            for field in ("size", "sha256", "plain_size", "plain_sha256"):
                entry[field] = theirs["dump"][field]
    write_manifest(file_setup, first, doc)
    stderr = restore_fails_with_integrity_error(file_setup, first, empty_db)
    assert "seal" in stderr


def test_edited_manifest_is_refused(file_setup: Setup, empty_db: Any) -> None:
    backup_id = backup(file_setup)
    doc = read_manifest(file_setup, backup_id)
    doc["tables"]["public.contacts"] += 1
    write_manifest(file_setup, backup_id, doc)
    assert "seal" in restore_fails_with_integrity_error(file_setup, backup_id, empty_db)


def test_wrong_key_exits_3(file_setup: Setup, empty_db: Any) -> None:
    backup_id = backup(file_setup)
    other = file_setup.dir / "other-identity.txt"
    write_identity_file(other, generate_identity())
    file_setup.doc["encryption"]["identity_file"] = str(other)
    file_setup.write()
    stderr = restore_fails_with_integrity_error(file_setup, backup_id, empty_db)
    assert "identity" in stderr


def test_missing_identity_exits_2_naming_the_setting(file_setup: Setup, empty_db: Any) -> None:
    backup_id = backup(file_setup)
    del file_setup.doc["encryption"]["identity_file"]
    file_setup.write()
    out = file_setup.run("restore", backup_id, "--to", empty_db.dsn, expect=2)
    assert "encryption.identity_file" in out.stderr
    assert user_tables(empty_db.dsn, TEST_PASSWORD) == []
