"""Interoperability with the reference ``age`` tools: break-glass restores need nothing but them."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from drtool.crypto.age import CHUNK_SIZE, decrypt, encrypt
from drtool.crypto.keys import (
    Identity,
    generate_identity,
    identity_from_raw_key,
    parse_identity_file,
    parse_recipient,
    write_identity_file,
)
from drtool.errors import IntegrityError

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "age"
SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, 2_500_001]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def tool(name: str) -> str:
    """Path of a reference age tool: a missing tool skips locally and fails in CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found on PATH (Debian/Ubuntu: apt-get install age)"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


def run(argv: list[str], data: bytes = b"") -> bytes:
    done = subprocess.run(argv, input=data, capture_output=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def drtool_encrypt(data: bytes, *identities: Identity) -> bytes:
    pieces = [data[i : i + 10_000] for i in range(0, len(data), 10_000)]
    return b"".join(encrypt(pieces, [i.recipient() for i in identities]))


def drtool_decrypt(blob: bytes, identities: list[Identity]) -> bytes:
    return b"".join(
        decrypt([blob[i : i + 50_000] for i in range(0, len(blob), 50_000)], identities)
    )


@pytest.fixture
def identity_file(tmp_path: Path) -> tuple[Path, Identity]:
    identity = generate_identity()
    path = tmp_path / "identity.txt"
    write_identity_file(path, identity)
    return path, identity


@pytest.mark.parametrize("size", SIZES)
def test_age_decrypts_what_drtool_encrypts(size: int, identity_file: tuple[Path, Identity]) -> None:
    path, identity = identity_file
    data = os.urandom(size)
    assert run([tool("age"), "-d", "-i", str(path)], drtool_encrypt(data, identity)) == data


@pytest.mark.parametrize("size", SIZES)
def test_drtool_decrypts_what_age_encrypts(size: int, identity_file: tuple[Path, Identity]) -> None:
    _, identity = identity_file
    data = os.urandom(size)
    blob = run([tool("age"), "-r", identity.recipient().encode()], data)
    assert drtool_decrypt(blob, [identity]) == data


def test_age_decrypts_with_any_of_several_recipients(tmp_path: Path) -> None:
    identities = [generate_identity() for _ in range(3)]
    data = os.urandom(100_000)
    blob = drtool_encrypt(data, *identities)
    for number, identity in enumerate(identities):
        path = tmp_path / f"id{number}.txt"
        write_identity_file(path, identity)
        assert run([tool("age"), "-d", "-i", str(path)], blob) == data


def test_age_keygen_identity_parses_to_the_same_recipient(tmp_path: Path) -> None:
    path = tmp_path / "keygen.txt"
    run([tool("age-keygen"), "-o", str(path)])
    (identity,) = parse_identity_file(path)
    printed = run([tool("age-keygen"), "-y", str(path)]).decode().strip()
    assert identity.recipient() == parse_recipient(printed)
    assert identity.encode() in path.read_text()
    data = os.urandom(CHUNK_SIZE + 99)
    assert drtool_decrypt(run([tool("age"), "-r", printed], data), [identity]) == data


def test_age_file_with_an_ssh_stanza_is_read_by_skipping_it(
    identity_file: tuple[Path, Identity],
) -> None:
    _, identity = identity_file
    ssh = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
    )
    data = os.urandom(5000)
    blob = run([tool("age"), "-r", ssh.decode(), "-r", identity.recipient().encode()], data)
    assert b"-> ssh-ed25519 " in blob.split(b"\n---", 1)[0]
    assert drtool_decrypt(blob, [identity]) == data


def test_raw_key_identity_is_usable_by_age_as_an_identity_file(tmp_path: Path) -> None:
    raw = os.urandom(32)
    identity = identity_from_raw_key(raw.hex())
    path = tmp_path / "from-raw.txt"
    path.write_text(identity.encode() + "\n")
    data = os.urandom(1000)
    assert run([tool("age"), "-d", "-i", str(path)], drtool_encrypt(data, identity)) == data


def test_age_and_drtool_both_refuse_a_truncated_file(identity_file: tuple[Path, Identity]) -> None:
    path, identity = identity_file
    blob = drtool_encrypt(os.urandom(2 * CHUNK_SIZE + 10), identity)
    cut = blob[: len(blob) - 26]  # exactly at the end of the second (full) chunk
    done = subprocess.run(
        [tool("age"), "-d", "-i", str(path)], input=cut, capture_output=True, check=False
    )
    assert done.returncode != 0
    with pytest.raises(IntegrityError) as info:
        drtool_decrypt(cut, [identity])
    assert info.value.chunk == 2


@pytest.mark.parametrize("name", ["hello.age", "two-chunks.age", "empty.age"])
def test_golden_files_are_standard_age(name: str, tmp_path: Path) -> None:
    identity_path = tmp_path / "identity.txt"
    shutil.copyfile(GOLDEN / "identity.txt", identity_path)
    identity_path.chmod(0o600)
    blob = (GOLDEN / name).read_bytes()
    plain = run([tool("age"), "-d", "-i", str(identity_path)], blob)
    assert plain == drtool_decrypt(blob, parse_identity_file(identity_path))


def test_format_doc_snippet_turns_a_raw_key_into_an_age_identity(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "format.md").read_text()
    start = doc.index("python3 - <<'EOF' > identity.txt\n") + len(
        "python3 - <<'EOF' > identity.txt\n"
    )
    script = doc[start : doc.index("\nEOF\n", start)]
    raw = os.urandom(32)
    for form in (raw.hex(), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        env = {**os.environ, "DRTOOL_ENCRYPTION__KEY": form}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == identity_from_raw_key(form).encode()
