"""verify through the real CLI against real PostgreSQL and real storage, with real damage done
to the stored bytes: flipped, truncated, swapped, spliced, edited, deleted, wrong key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from drtool.config import StorageConfig
from drtool.crypto.keys import generate_identity, parse_identity_file, write_identity_file
from tests.fixtures.cli import CliResult, Setup, make_setup

AGE_CHUNK_BYTES = 65536 + 16  # a full stored age chunk: 64 KiB of ciphertext and its tag
NONCE_BYTES = 16
SEAL_PROBLEM = "manifest does not match its seal"


class Stored:
    """Raw access to a setup's stored objects (a local directory or an S3 bucket), to damage
    them the way a bad disk, a truncating copy or an attacker would."""

    def __init__(self, setup: Setup, moto: Any = None) -> None:
        url = setup.doc["storage"]["url"]
        self.moto = moto
        if url.startswith("s3://"):
            self.bucket, self.prefix = url.removeprefix("s3://").split("/", 1)
        else:
            self.root = Path(url.removeprefix("file://"))

    def read(self, key: str) -> bytes:
        if self.moto is None:
            return (self.root / key).read_bytes()
        obj = self.moto.client().get_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")
        data: bytes = obj["Body"].read()
        return data

    def write(self, key: str, data: bytes) -> None:
        if self.moto is None:
            (self.root / key).write_bytes(data)
        else:
            self.moto.client().put_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}", Body=data)

    def delete(self, key: str) -> None:
        if self.moto is None:
            (self.root / key).unlink()
        else:
            self.moto.client().delete_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")

    def keys(self, prefix: str) -> list[str]:
        if self.moto is None:
            found = (self.root / prefix).rglob("*")
            return sorted(str(p.relative_to(self.root)) for p in found if p.is_file())
        listed = self.moto.client().list_objects_v2(
            Bucket=self.bucket, Prefix=f"{self.prefix}/{prefix}"
        )
        return sorted(o["Key"].removeprefix(f"{self.prefix}/") for o in listed.get("Contents", []))

    def manifest(self, item_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.read(f"backups/{item_id}/manifest.json"))
        return doc

    def edit_manifest(self, item_id: str, change: Callable[[dict[str, Any]], None]) -> None:
        doc = self.manifest(item_id)
        change(doc)
        data = json.dumps(doc, indent=2, sort_keys=True) + "\n"
        self.write(f"backups/{item_id}/manifest.json", data.encode())

    def key(self, item_id: str, name: str) -> str:
        entry = next(o for o in self.manifest(item_id)["objects"] if o["name"] == name)
        key: str = entry["key"]
        return key


def stored_for(request: pytest.FixtureRequest, setup: Setup) -> Stored:
    s3 = setup.doc["storage"]["url"].startswith("s3://")
    return Stored(setup, request.getfixturevalue("moto_server") if s3 else None)


def payload_start(data: bytes) -> int:
    """Offset of age chunk 0: after the header's "--- MAC" line and the 16-byte payload nonce."""
    footer = data.index(b"\n--- ") + 1
    return data.index(b"\n", footer) + 1 + NONCE_BYTES


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def problems(result: CliResult) -> list[dict[str, Any]]:
    """Every problem of every item in a `verify --json` result."""
    return [p for item in result.json["items"] for p in item["problems"]]


def assert_verify_shape(doc: dict[str, Any]) -> None:
    assert isinstance(doc["ok"], bool) and doc["items"]
    for item in doc["items"]:
        assert {"id", "ok", "deep", "problems"} <= set(item)
        for problem in item["problems"]:
            assert set(problem) >= {"object", "chunk", "problem"}


@dataclass
class Two:
    """A file-backed setup holding two healthy backups (``older``, ``newer``) of the sample."""

    setup: Setup
    stored: Stored
    older: str
    newer: str

    def run(self, *args: str, expect: int | None = 0) -> CliResult:
        return self.setup.run(*args, expect=expect)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, sample_db: Any) -> tuple[Setup, str, str]:
    """Two backups made once for the module; each test damages its own copy."""
    base = tmp_path_factory.mktemp("verify-pristine")
    storage = StorageConfig(url=(base / "storage").as_uri())
    setup = make_setup(base / "cfg", sample_db.dsn, sample_db.password, storage)
    older = setup.run("backup").stdout.strip().splitlines()[-1]
    newer = setup.run("backup").stdout.strip().splitlines()[-1]
    return setup, older, newer


@pytest.fixture
def two(pristine: tuple[Setup, str, str], tmp_path: Path) -> Two:
    source, older, newer = pristine
    setup = source.clone(tmp_path)
    return Two(setup, Stored(setup), older, newer)


def test_healthy_backup_verifies_shallow_and_deep_on_each_backend(
    request: pytest.FixtureRequest, any_setup: Setup
) -> None:
    backup_id = any_setup.run("backup").stdout.strip().splitlines()[-1]
    shallow = any_setup.run("verify", "--json").json
    assert_verify_shape(shallow)
    assert shallow["ok"] is True
    [item] = shallow["items"]
    assert item["id"] == backup_id and item["ok"] and not item["deep"] and item["problems"] == []
    assert item["bytes_read"] > 0
    deep = any_setup.run("--json", "verify", backup_id, "--deep").json
    assert deep["ok"] is True and deep["items"][0]["deep"] is True
    assert deep["items"][0]["plain_bytes"] > deep["items"][0]["bytes_read"] > 0
    human = any_setup.run("verify", "latest", "--deep")
    assert f"backup {backup_id}: ok (deep" in human.stdout
    # Every run left a record; list and show report the newest.
    listed = any_setup.run("list", "--json").json["items"][0]
    assert listed["last_verify_ok"] is True and listed["last_verified_at"]
    shown = any_setup.run("show", backup_id, "--json").json
    assert shown["last_verification"]["deep"] is True and shown["last_verification"]["ok"]
    assert "verified:" in any_setup.run("show", "latest").stdout
    records = stored_for(request, any_setup).keys(f"verifications/{backup_id}/")
    assert len(records) == 3 and all(k.endswith(".json") for k in records)


def test_flipped_byte_mid_object_fails_shallow_and_deep_names_the_chunk(
    request: pytest.FixtureRequest, any_setup: Setup
) -> None:
    backup_id = any_setup.run("backup").stdout.strip().splitlines()[-1]
    stored = stored_for(request, any_setup)
    key = stored.key(backup_id, "dump")
    data = stored.read(key)
    middle = len(data) // 2
    stored.write(key, flip(data, middle))
    shallow = any_setup.run("verify", "--json", expect=3)
    assert_verify_shape(shallow.json)
    assert shallow.json["ok"] is False
    assert [(p["object"], p["chunk"]) for p in problems(shallow)] == [("dump", None)]
    assert "SHA-256" in problems(shallow)[0]["problem"]
    deep = any_setup.run("verify", "--deep", "--json", expect=3)
    chunk = (middle - payload_start(data)) // AGE_CHUNK_BYTES
    assert [(p["object"], p["chunk"]) for p in problems(deep)] == [("dump", chunk)]
    human = any_setup.run("verify", "--deep", expect=3)
    assert f"backup {backup_id}: FAILED" in human.stdout
    assert f"dump chunk {chunk}: " in human.stdout and "authentication" in human.stdout
    assert "Traceback" not in human.stderr
    listed = any_setup.run("list", "--json").json["items"][0]
    assert listed["last_verify_ok"] is False


def test_truncation_at_a_64k_chunk_boundary_is_detected(two: Two) -> None:
    key = two.stored.key(two.newer, "dump")
    data = two.stored.read(key)
    kept_chunks = 5
    two.stored.write(key, data[: payload_start(data) + kept_chunks * AGE_CHUNK_BYTES])
    shallow = two.run("verify", "--json", expect=3)
    [problem] = problems(shallow)
    assert problem["object"] == "dump" and "stored size" in problem["problem"]
    deep = two.run("verify", "--deep", "--json", expect=3)
    [problem] = problems(deep)
    # Chunk 4 authenticates as non-final, so the object ends where chunk 5 should be.
    assert (problem["object"], problem["chunk"]) == ("dump", kept_chunks)
    assert "truncated" in problem["problem"]


def test_two_swapped_chunks_are_detected_even_with_a_matching_manifest(two: Two) -> None:
    key = two.stored.key(two.newer, "dump")
    data = two.stored.read(key)
    start = payload_start(data)

    def chunk(i: int) -> bytes:
        return data[start + i * AGE_CHUNK_BYTES : start + (i + 1) * AGE_CHUNK_BYTES]

    swapped = data[: start + 2 * AGE_CHUNK_BYTES] + chunk(3) + chunk(2)
    swapped += data[start + 4 * AGE_CHUNK_BYTES :]
    assert len(swapped) == len(data)
    two.stored.write(key, swapped)
    assert "SHA-256" in problems(two.run("verify", "--json", expect=3))[0]["problem"]
    assert [
        (p["object"], p["chunk"]) for p in problems(two.run("verify", "--deep", "--json", expect=3))
    ] == [("dump", 2)]
    # An attacker also fixes the manifest's checksum: the stored bytes now "match" (shallow
    # passes), but the chunk order is authenticated and the edited manifest fails its seal.

    def patch(doc: dict[str, Any]) -> None:
        entry = next(o for o in doc["objects"] if o["name"] == "dump")
        entry["sha256"] = hashlib.sha256(swapped).hexdigest()

    two.stored.edit_manifest(two.newer, patch)
    two.run("verify")
    deep = problems(two.run("verify", "--deep", "--json", expect=3))
    assert ("dump", 2) in [(p["object"], p["chunk"]) for p in deep]
    assert any(p["object"] == "manifest.json" and SEAL_PROBLEM in p["problem"] for p in deep)


def test_object_swapped_in_from_another_backup_fails_the_seal(two: Two) -> None:
    older_key, newer_key = two.stored.key(two.older, "dump"), two.stored.key(two.newer, "dump")
    two.stored.write(older_key, two.stored.read(newer_key))
    newer_entry = next(o for o in two.stored.manifest(two.newer)["objects"] if o["name"] == "dump")

    def patch(doc: dict[str, Any]) -> None:
        entry = next(o for o in doc["objects"] if o["name"] == "dump")
        for field in ("size", "sha256", "plain_size", "plain_sha256"):
            entry[field] = newer_entry[field]

    two.stored.edit_manifest(two.older, patch)
    # Every byte matches the (edited) manifest and every chunk authenticates: only the seal,
    # keyed by the dump's own file key, shows that this is not the dump it was sealed with.
    two.run("verify", two.older)
    deep = two.run("verify", two.older, "--deep", "--json", expect=3)
    assert [(p["object"], p["chunk"]) for p in problems(deep)] == [("manifest.json", None)]
    assert SEAL_PROBLEM in problems(deep)[0]["problem"]


def test_edited_row_count_passes_shallow_and_fails_deep(two: Two) -> None:
    two.stored.edit_manifest(two.newer, lambda doc: doc["tables"].update({"public.contacts": 1}))
    two.run("verify")
    deep = two.run("verify", "--deep", "--json", expect=3)
    assert [(p["object"], p["chunk"]) for p in problems(deep)] == [("manifest.json", None)]
    # The failure is recorded: the newest record wins in list and show.
    [newer, older] = two.run("list", "--json").json["items"]
    assert (newer["id"], newer["last_verify_ok"]) == (two.newer, False)
    assert (older["last_verified_at"], older["last_verify_ok"]) == (None, None)
    shown = two.run("show", two.newer)
    assert "FAILED, 1 problem(s) (deep)" in shown.stdout
    record_dir = two.stored.root / "verifications" / two.newer
    records = sorted(record_dir.glob("*.json"))
    assert len(records) == 2
    newest = json.loads(records[-1].read_text())
    assert newest["ok"] is False and newest["deep"] is True and newest["item_id"] == two.newer
    assert newest["problems"][0]["object"] == "manifest.json"


def test_deleted_object_is_reported_missing(two: Two) -> None:
    two.stored.delete(two.stored.key(two.newer, "globals"))
    for args in (["verify"], ["verify", "--deep"]):
        result = two.run(*args, "--json", expect=3)
        [problem] = problems(result)
        assert problem["object"] == "globals" and "missing" in problem["problem"]


def test_deleted_manifest_removes_the_item_and_latest_is_the_previous_one(two: Two) -> None:
    two.stored.delete(f"backups/{two.newer}/manifest.json")
    assert [i["id"] for i in two.run("list", "--json").json["items"]] == [two.older]
    assert [i["id"] for i in two.run("verify", "--json").json["items"]] == [two.older]
    gone = two.run("verify", two.newer, expect=2)
    assert two.newer in gone.stderr


def test_manifest_copied_into_another_backups_folder_is_refused(two: Two) -> None:
    older_manifest = two.stored.read(f"backups/{two.older}/manifest.json")
    two.stored.write(f"backups/{two.newer}/manifest.json", older_manifest)
    by_id = two.run("verify", two.newer, "--json", expect=3)
    [problem] = problems(by_id)
    assert problem["object"] == "manifest.json" and two.older in problem["problem"]
    # `latest` does not silently fall back to the older backup: the newer one is reported.
    latest = two.run("verify", "--json", expect=3).json
    assert [(i["id"], i["ok"]) for i in latest["items"]] == [(two.newer, False), (two.older, True)]


def test_wrong_identity_fails_deep_with_exit_3(two: Two, tmp_path: Path) -> None:
    other = tmp_path / "other-identity.txt"
    write_identity_file(other, generate_identity())
    two.setup.doc["encryption"]["identity_file"] = str(other)
    two.setup.write()
    two.run("verify")  # no key involved
    deep = two.run("verify", "--deep", "--json", expect=3)
    found = problems(deep)
    assert {p["object"] for p in found} == {"manifest.json", "dump", "globals"}
    assert all("no identity matches" in p["problem"] for p in found)
    human = two.run("verify", "--deep", expect=3)
    assert "hint: check encryption.identity_file" in human.stdout


def test_recipients_only_host_verifies_and_deep_names_the_identity_file(two: Two) -> None:
    del two.setup.doc["encryption"]["identity_file"]
    two.setup.write()
    two.run("verify")
    deep = two.run("verify", "--deep", expect=2)
    assert "encryption.identity_file" in deep.stderr and "Traceback" not in deep.stderr
    as_json = two.run("verify", "--deep", "--json", expect=2).json
    assert as_json["ok"] is False and as_json["exit_code"] == 2
    assert "encryption.identity_file" in as_json["error"]["message"]


def test_every_damaged_object_is_reported_not_just_the_first(two: Two) -> None:
    expected = []
    for name in ("dump", "globals"):
        key = two.stored.key(two.newer, name)
        data = two.stored.read(key)
        offset = len(data) - 20  # inside the last chunk
        two.stored.write(key, flip(data, offset))
        expected.append((name, (offset - payload_start(data)) // AGE_CHUNK_BYTES))
    shallow = two.run("verify", "--json", expect=3)
    assert [p["object"] for p in problems(shallow)] == ["dump", "globals"]
    deep = two.run("verify", "--deep", "--json", expect=3)
    assert [(p["object"], p["chunk"]) for p in problems(deep)] == expected
    assert expected[1] == ("globals", 0)


def test_verify_all_checks_every_item_and_fails_if_any_failed(two: Two) -> None:
    two.stored.delete(two.stored.key(two.older, "dump"))
    two.run("verify")  # the latest is intact
    result = two.run("verify", "--all", "--json", expect=3).json
    assert_verify_shape(result)
    assert [(i["id"], i["ok"]) for i in result["items"]] == [(two.newer, True), (two.older, False)]
    human = two.run("verify", "--all", expect=3)
    assert "1 of 2 items verified ok" in human.stdout
    assert two.run("verify", two.older, "--all", expect=2).code == 2


def test_unknown_id_and_empty_storage_exit_2(two: Two, tmp_path: Path) -> None:
    assert two.run("verify", "20200101T000000.000Z-abcd", expect=2).code == 2
    assert "not a drtool id" in two.run("verify", "nonsense", expect=2).stderr
    two.setup.doc["storage"]["url"] = (tmp_path / "empty").as_uri()
    two.setup.write()
    assert "no complete backup" in two.run("verify", "--all", expect=2).stderr


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def unpadded_b64(text: bytes) -> bytes:
    return base64.b64decode(text + b"=" * (-len(text) % 4))


def test_the_seal_is_exactly_what_docs_format_md_describes(two: Two) -> None:
    """An independent computation from the document alone (not drtool's code) gives the mac."""
    manifest = two.stored.manifest(two.newer)
    assert manifest["seal"]["algorithm"] == "hmac-sha256/age-file-key"
    assert manifest["seal"]["object"] == "dump"
    header = two.stored.read(two.stored.key(two.newer, "dump"))[:4096]
    lines = header.split(b"\n")
    stanza = lines[1].split(b" ")
    assert stanza[:2] == [b"->", b"X25519"]
    share, body = unpadded_b64(stanza[2]), unpadded_b64(lines[2])
    identity = parse_identity_file(two.setup.identity_path)[0]
    private = X25519PrivateKey.from_private_bytes(identity.private_key)
    public = private.public_key().public_bytes_raw()
    shared = private.exchange(X25519PublicKey.from_public_bytes(share))
    wrap_key = hkdf(shared, share + public, b"age-encryption.org/v1/X25519")
    file_key = ChaCha20Poly1305(wrap_key).decrypt(bytes(12), body, None)
    seal_key = hkdf(file_key, b"", b"drtool.manifest-seal/v1")
    body_doc = {k: v for k, v in manifest.items() if k != "seal"}
    canonical = json.dumps(body_doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    mac = hmac.new(seal_key, canonical.encode(), hashlib.sha256).hexdigest()
    assert mac == manifest["seal"]["mac"]


def test_a_tampered_dump_is_named_by_its_storage_key(two: Two) -> None:
    """Operators look for the key in their bucket: the human output gives the object's full
    address, --json each problem's ``key`` (the short name stays), and show gives the keys."""
    key = two.stored.key(two.newer, "dump")
    assert key == f"backups/{two.newer}/dump.pgdump.zst.age"
    data = two.stored.read(key)
    two.stored.write(key, flip(data, len(data) // 2))
    location = f"{two.stored.root.as_uri()}/{key}"
    for deep in ([], ["--deep"]):
        doc = two.run("verify", *deep, "--json", expect=3).json
        assert [(p["object"], p["key"]) for p in problems_of(doc)] == [("dump", key)]
        assert doc["storage"] == two.stored.root.as_uri()
        human = two.run("verify", *deep, expect=3).stdout
        assert f"stored as {location}\n" in human, human
    shown = two.run("show", two.newer, "--json").json
    assert {(o["name"], o["key"]) for o in shown["objects"]} >= {("dump", key)}
    text = two.run("show", two.newer).stdout
    assert f"key {key}" in text
    assert f"dump ({key}) chunk " in text, "the last verification names the key too"


def test_a_manifest_problem_names_the_manifest_key(two: Two) -> None:
    two.stored.edit_manifest(two.newer, lambda doc: doc["tables"].update({"public.x": 1}))
    doc = two.run("verify", "--deep", "--json", expect=3).json
    [problem] = problems_of(doc)
    assert (problem["object"], problem["key"]) == (
        "manifest.json",
        f"backups/{two.newer}/manifest.json",
    )


def problems_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for item in doc["items"] for p in item["problems"]]
