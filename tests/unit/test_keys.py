"""age keys: recipient/identity encodings, identity files, raw 32-byte keys; no key in messages."""

from __future__ import annotations

import base64
import hashlib
import logging
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drtool.crypto import bech32
from drtool.crypto.keys import (
    Identity,
    Recipient,
    generate_identity,
    identity_from_raw_key,
    parse_identity_file,
    parse_recipient,
    write_identity_file,
)
from drtool.errors import UsageError

# The X25519 example from the age specification (c2sp.org/age): identity 0x42 * 32.
SPEC_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
# Bytes whose base64 uses '+' and '/' (so base64url differs): the alphabets are really tested.
RAW_KEY = bytes([0xFB, 0xEF, 0xFF] * 10 + [0x01, 0x02])


def test_identity_and_recipient_match_the_age_spec_example() -> None:
    identity = Identity(b"\x42" * 32)
    assert identity.encode() == SPEC_IDENTITY
    assert identity.recipient().encode() == SPEC_RECIPIENT
    assert parse_recipient(SPEC_RECIPIENT) == identity.recipient()


def test_fingerprint_is_sha256_prefix_of_the_recipient_text() -> None:
    recipient = parse_recipient(SPEC_RECIPIENT)
    assert recipient.fingerprint() == hashlib.sha256(SPEC_RECIPIENT.encode()).hexdigest()[:16]
    assert len(recipient.fingerprint()) == 16


def test_identity_repr_never_shows_the_private_key() -> None:
    identity = Identity(RAW_KEY)
    for text in (repr(identity), str(identity), repr([identity]), f"{identity!r}"):
        assert identity.encode() not in text
        assert RAW_KEY.hex() not in text
        assert repr(RAW_KEY) not in text
        assert identity.recipient().encode() in text


def test_keys_of_wrong_length_are_refused() -> None:
    with pytest.raises(ValueError):
        Identity(b"\x01" * 31)
    with pytest.raises(ValueError):
        Recipient(b"\x01" * 33)


def test_generated_identities_are_distinct_and_round_trip() -> None:
    first, second = generate_identity(), generate_identity()
    assert first != second
    assert parse_recipient(first.recipient().encode()) == first.recipient()


@pytest.mark.parametrize(
    "text",
    [
        SPEC_RECIPIENT[:-1] + ("q" if SPEC_RECIPIENT[-1] != "q" else "p"),  # bad checksum
        SPEC_RECIPIENT[:20] + SPEC_RECIPIENT[20:].upper(),  # mixed case
        bech32.encode("age", b"\x01" * 31),  # wrong length
        bech32.encode("bc", b"\x01" * 32),  # wrong prefix
        bech32.encode("age1pq", b"\x01" * 32),  # post-quantum recipient: not supported
        bech32.encode("age", bytes(32)),  # low-order point
        "age1",
        "",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZ1c2VyQGhvc3Q",
    ],
)
def test_malformed_recipient_is_a_usage_error_naming_only_its_prefix(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_recipient(text)
    if len(text) > 12:
        assert text not in info.value.message
        assert text[:8] in info.value.message


def test_secret_key_given_as_recipient_is_refused_without_echo() -> None:
    with pytest.raises(UsageError) as info:
        parse_recipient(SPEC_IDENTITY)
    assert SPEC_IDENTITY[16:] not in info.value.message
    assert SPEC_IDENTITY[16:] not in (info.value.hint or "")


def test_uppercase_recipient_is_accepted_as_bech32_allows() -> None:
    assert parse_recipient(f"  {SPEC_RECIPIENT.upper()}\n").encode() == SPEC_RECIPIENT


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_identity_file_with_comments_blank_lines_and_crlf(tmp_path: Path) -> None:
    other = generate_identity()
    text = (
        f"# created: 2026-01-01T00:00:00Z\r\n# public key: {SPEC_RECIPIENT}\r\n{SPEC_IDENTITY}\r\n"
        f"\n   \n# escrow\n  {other.encode()}  \n"
    )
    identities = parse_identity_file(_write(tmp_path / "id.txt", text))
    assert identities == [Identity(b"\x42" * 32), other]


def test_missing_identity_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        parse_identity_file(tmp_path / "nope.txt")
    assert "encryption.identity_file" in info.value.message
    assert type(info.value).exit_code == 2


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n\n",
        "AGE-PLUGIN-YUBIKEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
        SPEC_IDENTITY[:-1] + ("Q" if SPEC_IDENTITY[-1] != "Q" else "P") + "\n",  # bad checksum
        bech32.encode("age-secret-key-", b"\x07" * 31).upper() + "\n",
    ],
)
def test_bad_identity_file_is_a_usage_error_without_key_material(tmp_path: Path, text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_identity_file(_write(tmp_path / "id.txt", text))
    assert "encryption.identity_file" in info.value.message
    for line in text.splitlines():
        if len(line) > 20:
            assert line[16:] not in info.value.message


def test_non_utf8_identity_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "id.bin"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UsageError):
        parse_identity_file(path)


def test_group_readable_identity_file_warns_but_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path / "id.txt", SPEC_IDENTITY + "\n", mode=0o644)
    with caplog.at_level(logging.WARNING):
        assert parse_identity_file(path) == [Identity(b"\x42" * 32)]
    assert "chmod 600" in caplog.text
    assert SPEC_IDENTITY not in caplog.text


def test_written_identity_file_is_0600_in_age_keygen_format(tmp_path: Path) -> None:
    identity = generate_identity()
    path = tmp_path / "identity.txt"
    write_identity_file(path, identity, created=datetime(2026, 11, 26, 2, 15, tzinfo=UTC))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().splitlines() == [
        "# created: 2026-11-26T02:15:00Z",
        f"# public key: {identity.recipient().encode()}",
        identity.encode(),
    ]
    assert parse_identity_file(path) == [identity]


def test_writing_an_identity_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "identity.txt", "precious\n")
    with pytest.raises(UsageError) as info:
        write_identity_file(path, generate_identity())
    assert "already exists" in info.value.message
    assert path.read_text() == "precious\n"


def test_writing_an_identity_into_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        write_identity_file(tmp_path / "missing" / "id.txt", generate_identity())


def _raw_key_forms(key: bytes) -> list[str]:
    std = base64.b64encode(key).decode()
    url = base64.urlsafe_b64encode(key).decode()
    return [std, std.rstrip("="), url, url.rstrip("="), key.hex(), key.hex().upper()]


def test_raw_key_forms_all_give_the_same_identity() -> None:
    forms = _raw_key_forms(RAW_KEY)
    assert len(set(forms)) == len(forms)
    for form in forms:
        assert identity_from_raw_key(form) == Identity(RAW_KEY)
    assert identity_from_raw_key(f"  {forms[0]}\n") == Identity(RAW_KEY)


def test_raw_key_is_the_x25519_scalar_of_the_age_identity() -> None:
    assert identity_from_raw_key("42" * 32).encode() == SPEC_IDENTITY


@pytest.mark.parametrize("size", [0, 1, 31, 33, 48, 64])
def test_raw_key_of_wrong_size_names_the_size_not_the_value(size: int) -> None:
    key = bytes(range(7, 7 + size))
    for form in _raw_key_forms(key):
        with pytest.raises(UsageError) as info:
            identity_from_raw_key(form)
        message = info.value.message
        assert "DRTOOL_ENCRYPTION__KEY must be exactly 32 bytes" in message
        assert f"got {size} bytes" in message
        if form:
            assert form.rstrip("=") not in message
            assert form.rstrip("=") not in (info.value.hint or "")


@pytest.mark.parametrize(
    "value",
    [
        "this is not a key at all!!",
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZ",
        base64.b64encode(RAW_KEY).decode() + "==",  # wrong padding
        base64.b64encode(RAW_KEY).decode().replace("+", "-", 1),  # mixed alphabets
        "0x" + "42" * 32,
    ],
)
def test_raw_key_garbage_is_a_usage_error_without_echo(value: str) -> None:
    with pytest.raises(UsageError) as info:
        identity_from_raw_key(value)
    assert value not in info.value.message
    assert "base64, base64url or hex" in info.value.message
