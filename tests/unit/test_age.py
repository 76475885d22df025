"""age v1 streaming encryption: round trips, layout, tampering, crafted headers, golden files."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from drtool.crypto.age import CHUNK_SIZE, decrypt, encrypt
from drtool.crypto.keys import Identity, Recipient, generate_identity, parse_identity_file
from drtool.errors import IntegrityError, UsageError

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "age"
ENC_CHUNK = CHUNK_SIZE + 16
IDENTITY = generate_identity()
OTHER = generate_identity()


def enc(data: bytes, *identities: Identity, piece: int | None = None) -> bytes:
    recipients = [i.recipient() for i in identities or (IDENTITY,)]
    pieces = [data] if piece is None else [data[i : i + piece] for i in range(0, len(data), piece)]
    return b"".join(encrypt(pieces, recipients))


def dec(
    blob: bytes, *identities: Identity, piece: int | None = None, obj: str | None = None
) -> bytes:
    pieces = [blob] if piece is None else [blob[i : i + piece] for i in range(0, len(blob), piece)]
    return b"".join(decrypt(pieces, list(identities or (IDENTITY,)), obj=obj))


def payload_offset(blob: bytes) -> int:
    """Offset of the first STREAM chunk: after the header line ending in the MAC and the nonce."""
    return blob.index(b"\n--- ") + 1 + 48 + 16


def integrity_error(blob: bytes, *identities: Identity) -> IntegrityError:
    with pytest.raises(IntegrityError) as info:
        dec(blob, *identities, obj="dump")
    assert info.value.obj == "dump"
    assert "dump" in info.value.message
    assert type(info.value).exit_code == 3
    return info.value


@pytest.mark.parametrize(
    "size", [0, 1, 100, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, 1_000_003]
)
def test_round_trip_of_every_size_boundary(size: int) -> None:
    data = os.urandom(size)
    assert dec(enc(data)) == data


@pytest.mark.parametrize("in_piece,out_piece", [(1, 1), (7, 65551), (65537, 65552), (4096, 3)])
def test_round_trip_whatever_the_input_and_output_chunking(in_piece: int, out_piece: int) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 1234 if in_piece > 1 else 70_000)
    assert dec(enc(data, piece=in_piece), piece=out_piece) == data


def test_empty_input_chunks_are_ignored() -> None:
    data = os.urandom(CHUNK_SIZE + 5)
    pieces = [b"", data[:10], b"", b"", data[10:], b""]
    blob = b"".join(encrypt(pieces, [IDENTITY.recipient()]))
    assert dec(blob) == data


@pytest.mark.parametrize(
    "size,chunks", [(0, 1), (1, 1), (CHUNK_SIZE, 1), (CHUNK_SIZE + 1, 2), (3 * CHUNK_SIZE, 3)]
)
def test_payload_is_stream_chunks_of_64_kib_plus_tag(size: int, chunks: int) -> None:
    blob = enc(os.urandom(size))
    # A plaintext that fills its last chunk ends with that full chunk, flagged final.
    assert len(blob) - payload_offset(blob) == size + 16 * chunks


def test_header_is_age_v1_text_with_one_x25519_stanza_per_recipient() -> None:
    blob = enc(b"x", IDENTITY, OTHER)
    header = blob[: blob.index(b"\n--- ") + 1 + 48].decode("ascii")
    lines = header.splitlines()
    assert lines[0] == "age-encryption.org/v1"
    assert [line.split(" ")[:2] for line in lines[1:5:2]] == [["->", "X25519"]] * 2
    assert all(len(line) == 43 for line in lines[2:5:2])
    assert lines[5].startswith("--- ") and len(lines[5]) == 47


def test_each_recipient_alone_can_decrypt() -> None:
    third = generate_identity()
    data = os.urandom(100_000)
    blob = enc(data, IDENTITY, OTHER, third)
    for identity in (IDENTITY, OTHER, third):
        assert dec(blob, identity) == data
    assert dec(blob, generate_identity(), third) == data


def test_encryption_needs_a_recipient_and_decryption_an_identity() -> None:
    with pytest.raises(UsageError):
        encrypt([b"data"], [])
    with pytest.raises(UsageError) as info:
        decrypt([enc(b"data")], [])
    assert "encryption.identity_file" in (info.value.hint or "")


def test_encrypting_to_a_low_order_point_is_refused() -> None:
    with pytest.raises(UsageError):
        encrypt([b"data"], [Recipient(bytes(32))])


def test_encryption_streams_without_reading_all_input() -> None:
    endless = itertools.repeat(b"z" * 10_000)
    out = list(itertools.islice(encrypt(endless, [IDENTITY.recipient()]), 5))
    assert [len(piece) for piece in out[1:]] == [ENC_CHUNK] * 4


def test_decryption_yields_each_chunk_as_it_authenticates() -> None:
    data = os.urandom(5 * CHUNK_SIZE)
    blob = enc(data)
    pulled: list[int] = []

    def source() -> Iterator[bytes]:
        for start in range(0, len(blob), 4096):
            pulled.append(start)
            yield blob[start : start + 4096]

    plain = decrypt(source(), [IDENTITY])
    assert next(plain) == data[:CHUNK_SIZE]
    assert len(pulled) * 4096 < 2 * ENC_CHUNK + 1024


def test_wrong_identity_is_an_integrity_error_with_a_key_hint() -> None:
    error = integrity_error(enc(b"secret rows"), OTHER)
    assert "wrong key" in error.message
    assert error.hint is not None and "encryption.identity_file" in error.hint
    assert OTHER.encode() not in str(error) + error.hint


@pytest.mark.parametrize("offset", [0, 5, 22, 25, 40, 60, 80, 100])
def test_flipped_byte_in_header_is_detected(offset: int) -> None:
    blob = bytearray(enc(b"payload"))
    blob[offset] ^= 0x01
    integrity_error(bytes(blob))


def test_flipped_byte_in_header_mac_is_detected() -> None:
    blob = enc(b"payload")
    mac_at = blob.index(b"\n--- ") + 5
    for delta in (0, 20):
        tampered = bytearray(blob)
        tampered[mac_at + delta] = ord("A") if tampered[mac_at + delta] != ord("A") else ord("B")
        error = integrity_error(bytes(tampered))
        assert "MAC" in error.message
        assert error.chunk is None


@pytest.mark.parametrize("chunk", [0, 1, 2])
def test_flipped_byte_in_a_chunk_names_that_chunk(chunk: int) -> None:
    blob = bytearray(enc(os.urandom(2 * CHUNK_SIZE + 10)))
    blob[payload_offset(bytes(blob)) + chunk * ENC_CHUNK + 5] ^= 0x80
    error = integrity_error(bytes(blob))
    assert error.chunk == chunk
    assert f"chunk {chunk}" in error.message


def test_flipped_payload_nonce_is_detected_in_chunk_zero() -> None:
    blob = bytearray(enc(os.urandom(1000)))
    blob[payload_offset(bytes(blob)) - 3] ^= 0x01
    assert integrity_error(bytes(blob)).chunk == 0


def test_truncation_at_a_chunk_boundary_is_detected() -> None:
    blob = enc(os.urandom(3 * CHUNK_SIZE + 100))
    start = payload_offset(blob)
    for kept in (1, 2, 3):
        error = integrity_error(blob[: start + kept * ENC_CHUNK])
        assert "truncated" in error.message
        assert error.chunk == kept


@pytest.mark.parametrize("cut", [1, 15, 16, 17, ENC_CHUNK - 1, ENC_CHUNK + 1])
def test_truncation_inside_the_payload_is_detected(cut: int) -> None:
    blob = enc(os.urandom(2 * CHUNK_SIZE + 100))
    integrity_error(blob[: payload_offset(blob) + cut])


def test_truncation_inside_header_or_nonce_is_detected() -> None:
    blob = enc(b"data")
    nonce_at = payload_offset(blob) - 16
    for cut in (0, 10, 22, 60, nonce_at - 1, nonce_at, nonce_at + 8):
        integrity_error(blob[:cut])


def test_header_without_payload_is_detected() -> None:
    blob = enc(b"data")
    assert integrity_error(blob[: payload_offset(blob)]).chunk == 0


def test_swapped_chunks_are_detected_at_the_first_one() -> None:
    blob = enc(os.urandom(3 * CHUNK_SIZE + 10))
    start = payload_offset(blob)
    first, second = blob[start : start + ENC_CHUNK], blob[start + ENC_CHUNK : start + 2 * ENC_CHUNK]
    swapped = blob[:start] + second + first + blob[start + 2 * ENC_CHUNK :]
    assert integrity_error(swapped).chunk == 0


def test_dropped_middle_chunk_is_detected() -> None:
    blob = enc(os.urandom(3 * CHUNK_SIZE + 10))
    start = payload_offset(blob)
    assert integrity_error(blob[: start + ENC_CHUNK] + blob[start + 2 * ENC_CHUNK :]).chunk == 1


@pytest.mark.parametrize("size", [10, CHUNK_SIZE, 2 * CHUNK_SIZE])
def test_trailing_data_after_the_final_chunk_is_detected(size: int) -> None:
    blob = enc(os.urandom(size))
    for garbage in (b"\x00", os.urandom(16), os.urandom(ENC_CHUNK + 3)):
        integrity_error(blob + garbage)


def test_a_full_final_chunk_followed_by_data_is_reported_as_trailing_data() -> None:
    error = integrity_error(enc(os.urandom(CHUNK_SIZE)) + os.urandom(50))
    assert "trailing data" in error.message
    assert error.chunk == 0


def test_files_spliced_from_two_encryptions_are_detected() -> None:
    data = os.urandom(2 * CHUNK_SIZE + 10)
    one, two = enc(data), enc(data)
    start = payload_offset(one)
    spliced = one[: start + ENC_CHUNK] + two[start + ENC_CHUNK :]
    assert integrity_error(spliced).chunk == 1


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"not an age file at all",
        b"age-encryption.org/v2\n-> X25519 abc\n\n--- abc\n",
        b"-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n",
        b"age-encryption.org/v1\n" + b"A" * (2 * 1024 * 1024),
    ],
)
def test_foreign_input_is_an_integrity_error(blob: bytes) -> None:
    integrity_error(blob)


# --- Crafted files: an independent minimal age writer, to reach what our encrypt never emits.


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def x25519_stanza(file_key: bytes, identity: Identity) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes_raw()
    public = identity.recipient().public_key
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public))
    wrap = _hkdf(shared, share + public, b"age-encryption.org/v1/X25519")
    body = ChaCha20Poly1305(wrap).encrypt(bytes(12), file_key, None)
    return b"-> X25519 " + _b64(share) + b"\n" + _b64(body) + b"\n"


def craft(stanzas: bytes, chunks: list[tuple[bytes, bool]], file_key: bytes) -> bytes:
    head = b"age-encryption.org/v1\n" + stanzas + b"---"
    mac = hmac.new(_hkdf(file_key, b"", b"header"), head, hashlib.sha256).digest()
    nonce = os.urandom(16)
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    out = [head, b" ", _b64(mac), b"\n", nonce]
    for counter, (plain, last) in enumerate(chunks):
        out.append(aead.encrypt(counter.to_bytes(11, "big") + bytes([last]), plain, None))
    return b"".join(out)


KEY = bytes(range(16))
BODY_70 = _b64(os.urandom(70))  # 94 base64 chars: one full 64-column line and a short one
FOREIGN_STANZAS = (
    b"-> ssh-ed25519 Ym9ndXM AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
    + _b64(os.urandom(32))
    + b"\n-> scrypt c2FsdHNhbHRzYWx0c2FsdA 18\n"
    + _b64(os.urandom(32))
    + b"\n-> example.com/enigma !#$%&'()*+,-./:;<=>?@[]^_`{|}~\n"
    + BODY_70[:64]
    + b"\n"
    + BODY_70[64:]
    + b"\n-> empty-body\n\n"
)


def test_crafted_reference_file_decrypts() -> None:
    blob = craft(x25519_stanza(KEY, IDENTITY), [(b"a" * CHUNK_SIZE, False), (b"b", True)], KEY)
    assert dec(blob) == b"a" * CHUNK_SIZE + b"b"


def test_stanzas_of_other_types_are_skipped() -> None:
    stanzas = FOREIGN_STANZAS + x25519_stanza(KEY, OTHER) + x25519_stanza(KEY, IDENTITY)
    assert dec(craft(stanzas, [(b"hello", True)], KEY)) == b"hello"
    integrity_error(craft(FOREIGN_STANZAS, [(b"hello", True)], KEY))


def test_only_empty_chunk_is_valid_but_empty_final_chunk_after_data_is_not() -> None:
    stanza = x25519_stanza(KEY, IDENTITY)
    assert dec(craft(stanza, [(b"", True)], KEY)) == b""
    blob = craft(stanza, [(b"x" * CHUNK_SIZE, False), (b"", True)], KEY)
    assert integrity_error(blob).chunk == 1


def test_final_flag_on_an_early_chunk_is_detected() -> None:
    stanza = x25519_stanza(KEY, IDENTITY)
    integrity_error(craft(stanza, [(b"x" * CHUNK_SIZE, True), (b"y", True)], KEY))
    integrity_error(craft(stanza, [(b"x" * 10, False)], KEY))


def test_short_non_final_chunk_is_detected() -> None:
    stanza = x25519_stanza(KEY, IDENTITY)
    integrity_error(craft(stanza, [(b"x" * 100, False), (b"y", True)], KEY))


def _mutated_stanza(old: bytes, new: bytes) -> bytes:
    stanza = x25519_stanza(KEY, IDENTITY)
    assert old in stanza
    return stanza.replace(old, new, 1)


@pytest.mark.parametrize(
    "stanza",
    [
        _mutated_stanza(b"X25519 ", b"X25519 extra "),  # extra argument
        _mutated_stanza(b"X25519 ", b"X25519  "),  # empty argument
        _mutated_stanza(b"\n", b"=\n"),  # padded share
        _mutated_stanza(b"\n", b"\r\n"),  # CRLF
        b"-> X25519 " + _b64(bytes(32)) + b"\n" + _b64(os.urandom(32)) + b"\n",  # low order
        b"-> X25519 " + _b64(os.urandom(31)) + b"\n" + _b64(os.urandom(32)) + b"\n",  # short share
        x25519_stanza(KEY, IDENTITY)[:-5] + b"\n",  # short body
        b"-> X25519 " + _b64(os.urandom(32)) + b"\n" + BODY_70[:64] + b"\n",  # no final line
        b"->X25519 abc\n\n",
        b"-> \n\n",
        b"-> X25519 abc\n" + b"A" * 65 + b"\n",  # over-long body line
    ],
    # Stable ids: some stanzas hold random bytes, and parallel workers must collect the same
    # test names.
    ids=[
        "extra-argument",
        "empty-argument",
        "padded-share",
        "crlf",
        "low-order",
        "short-share",
        "short-body",
        "no-final-line",
        "no-space",
        "no-type",
        "long-body-line",
    ],
)
def test_malformed_stanzas_are_rejected(stanza: bytes) -> None:
    integrity_error(craft(stanza + x25519_stanza(KEY, IDENTITY), [(b"data", True)], KEY))


def test_non_canonical_base64_is_rejected() -> None:
    stanza = x25519_stanza(KEY, IDENTITY)
    body_line = stanza.split(b"\n")[1]
    last = body_line[-1:]
    # The 43rd character carries 2 unused low bits: flipping one keeps the bytes, breaks canon.
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    sibling = alphabet[alphabet.index(last) ^ 1 : (alphabet.index(last) ^ 1) + 1]
    tampered = stanza.replace(body_line, body_line[:-1] + sibling)
    integrity_error(craft(tampered, [(b"data", True)], KEY))


@pytest.mark.parametrize("footer", [b"---  MAC", b"---MAC", b"--- AAAA=", b"--- " + b"A" * 44])
def test_malformed_mac_line_is_rejected(footer: bytes) -> None:
    blob = enc(b"data")
    start = blob.index(b"\n--- ") + 1
    integrity_error(blob[:start] + footer + b"\n" + blob[start + 48 :])


# --- Golden files: age v1 objects written by drtool 0.1; every future reader must read them.


def _golden_identities() -> list[Identity]:
    return parse_identity_file(GOLDEN / "identity.txt")


@pytest.mark.parametrize(
    "name,expected_sha256",
    [
        ("hello.age", hashlib.sha256(b"drtool golden age v1 file: hello, world\n").hexdigest()),
        ("two-chunks.age", hashlib.sha256((bytes(range(251)) * 300)[:66536]).hexdigest()),
        ("empty.age", hashlib.sha256(b"").hexdigest()),
    ],
)
def test_golden_v1_files_still_decrypt(name: str, expected_sha256: str) -> None:
    blob = (GOLDEN / name).read_bytes()
    plain = b"".join(decrypt([blob], _golden_identities(), obj=name))
    assert hashlib.sha256(plain).hexdigest() == expected_sha256
