"""The data path's stages and the manifest reader: exact round trips, clean integrity errors."""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drtool.catalog.manifest import BackupManifest, ObjectEntry, parse_manifest
from drtool.config import StorageConfig
from drtool.crypto.keys import generate_identity
from drtool.errors import IntegrityError, UsageError
from drtool.pipeline.stages import compress, decompress, rechunk
from drtool.pipeline.store import load, store
from drtool.storage import open_storage
from drtool.storage.faults import FaultyStorage


def test_compress_then_decompress_is_identity_for_any_chunking() -> None:
    data = os.urandom(300_000) + b"abc" * 200_000
    pieces = [data[i : i + 7919] for i in range(0, len(data), 7919)]
    packed = b"".join(compress(pieces, level=2))
    assert len(packed) < len(data)
    assert b"".join(decompress([packed[i : i + 1000] for i in range(0, len(packed), 1000)])) == data


@given(st.binary(max_size=4096))
@settings(max_examples=200, deadline=None)
def test_decompress_of_arbitrary_bytes_is_clean(blob: bytes) -> None:
    with contextlib.suppress(IntegrityError):
        b"".join(decompress([blob]))


def test_rechunk_cuts_exact_sizes() -> None:
    out = list(rechunk([b"a" * 10, b"b" * 25, b""], 8))
    assert [len(c) for c in out] == [8, 8, 8, 8, 3]
    assert b"".join(out) == b"a" * 10 + b"b" * 25


def test_store_then_load_round_trips_and_records_both_digests(tmp_path: Path) -> None:
    storage = open_storage(StorageConfig(url=f"file://{tmp_path}"))
    identity = generate_identity()
    data = os.urandom(200_000) * 3
    obj = store(storage, "x/obj.age", "dump", [data], recipients=[identity.recipient()], level=2)
    assert obj.plain_size == len(data)
    assert obj.size == storage.stat("x/obj.age").size
    assert b"".join(load(storage, obj, [identity])) == data


def test_load_detects_a_flipped_stored_byte_before_trusting_it(tmp_path: Path) -> None:
    storage = open_storage(StorageConfig(url=f"file://{tmp_path}"))
    identity = generate_identity()
    obj = store(
        storage, "o.age", "dump", [os.urandom(500_000)], recipients=[identity.recipient()], level=1
    )

    def flip(chunk: bytes) -> bytes:
        return chunk[:100] + bytes([chunk[100] ^ 1]) + chunk[101:] if len(chunk) > 100 else chunk

    with pytest.raises(IntegrityError) as info:
        b"".join(load(FaultyStorage(storage, corrupt_get=flip), obj, [identity]))
    assert info.value.obj == "dump"


def manifest_doc() -> dict[str, object]:
    entry = ObjectEntry(
        name="dump",
        key="backups/x/dump",
        size=10,
        sha256="a" * 64,
        plain_size=20,
        plain_sha256="b" * 64,
    )
    now = datetime(2026, 11, 26, tzinfo=UTC)
    m = BackupManifest(
        id="20261126T000000.000Z-abcd",
        created_at=now,
        finished_at=now,
        tool_version="0.1.0",
        objects=[entry],
        tables={"public.t": 3},
        globals={"status": "stored"},
    )
    return json.loads(m.to_json())


def test_manifest_round_trips_with_extra_fields() -> None:
    doc = manifest_doc()
    m = parse_manifest(json.dumps(doc).encode(), "m")
    assert m.tables == {"public.t": 3}
    assert isinstance(m, BackupManifest)
    assert m.globals == {"status": "stored"}
    assert json.loads(m.to_json()) == doc


def test_newer_manifest_version_asks_for_an_upgrade() -> None:
    doc = manifest_doc()
    doc["version"] = 99
    with pytest.raises(UsageError, match="newer drtool"):
        parse_manifest(json.dumps(doc).encode(), "m")


@given(st.binary(max_size=2048))
@settings(max_examples=300, deadline=None)
def test_manifest_reader_turns_any_bytes_into_a_manifest_or_an_integrity_error(blob: bytes) -> None:
    with contextlib.suppress(IntegrityError, UsageError):
        parse_manifest(blob, "m")


@given(
    st.dictionaries(
        st.sampled_from(["id", "kind", "objects", "tables", "created_at", "size"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.integers())),
    )
)
@settings(max_examples=300, deadline=None)
def test_manifest_reader_rejects_mangled_fields_cleanly(changes: dict[str, object]) -> None:
    doc = {**manifest_doc(), **changes}
    with contextlib.suppress(IntegrityError, UsageError):
        parse_manifest(json.dumps(doc).encode(), "m")


def test_manifest_seal_binds_the_manifest_to_the_dump_file_key() -> None:
    from drtool.crypto.age import Encryption, open_seal_key

    identity = generate_identity()
    enc = Encryption([identity.recipient()])
    stored = b"".join(enc.stream([b"dump bytes"]))
    base = BackupManifest.model_validate(manifest_doc())
    sealed = base.sealed(enc.seal_key, "dump")
    key = open_seal_key([stored[:50], stored[50:]], [identity])
    assert key == enc.seal_key
    reread = parse_manifest(sealed.to_json(), "m")
    assert reread.seal_object == "dump"
    assert reread.seal_valid(key)
    # An edited row count, or a seal checked with another object's key, fails.
    doc = json.loads(sealed.to_json())
    doc["tables"]["public.t"] = 4
    assert not parse_manifest(json.dumps(doc).encode(), "m").seal_valid(key)
    other = Encryption([identity.recipient()])
    assert not reread.seal_valid(other.seal_key)
    # An unsealed manifest is never valid.
    assert not parse_manifest(base.to_json(), "m").seal_valid(key)
