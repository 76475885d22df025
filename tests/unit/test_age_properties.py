"""Property tests: whatever bytes reach the age decryptor, the only failure is an IntegrityError."""

from __future__ import annotations

import base64
import functools
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drtool.crypto.age import CHUNK_SIZE, decrypt, encrypt
from drtool.crypto.keys import Identity, generate_identity
from drtool.errors import IntegrityError

IDENTITY = generate_identity()
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIZES = [0, 1, 1000, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE + 7]


@functools.cache
def sample(size: int) -> tuple[bytes, bytes]:
    """A plaintext of ``size`` bytes and its age encryption to IDENTITY (made once per size)."""
    plain = os.urandom(size)
    return plain, b"".join(encrypt([plain], [IDENTITY.recipient()]))


def outcome(pieces: list[bytes], identities: list[Identity] | None = None) -> bytes | None:
    """The plaintext, or None for an IntegrityError; any other exception fails the test."""
    try:
        return b"".join(decrypt(pieces, identities or [IDENTITY], obj="fuzz"))
    except IntegrityError as exc:
        assert exc.obj == "fuzz"
        return None


def split(blob: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(blob)) for c in cuts})
    return [blob[a:b] for a, b in zip([0, *points], [*points, len(blob)], strict=True)]


@SETTINGS
@given(st.binary(max_size=4096), st.lists(st.integers(0, 4096), max_size=4))
def test_arbitrary_bytes_end_in_integrity_error(blob: bytes, cuts: list[int]) -> None:
    assert outcome(split(blob, cuts)) is None


_b64 = st.binary(max_size=80).map(lambda b: base64.b64encode(b).rstrip(b"="))
_line = st.one_of(
    st.builds(
        lambda t, a: b"-> " + t + b" " + a, st.sampled_from([b"X25519", b"scrypt", b"x"]), _b64
    ),
    _b64.map(lambda b: b[:64]),
    st.just(b""),
    st.builds(lambda m: b"--- " + m, _b64),
    st.binary(max_size=70),
)


@SETTINGS
@given(st.lists(_line, max_size=8), st.binary(max_size=300))
def test_header_shaped_input_ends_in_integrity_error(lines: list[bytes], tail: bytes) -> None:
    blob = b"age-encryption.org/v1\n" + b"\n".join(lines) + b"\n" + tail
    assert outcome([blob]) is None


@SETTINGS
@given(st.sampled_from(SIZES), st.data())
def test_any_truncation_of_a_valid_file_is_detected(size: int, data: st.DataObject) -> None:
    _, blob = sample(size)
    cut = data.draw(st.integers(0, len(blob) - 1), label="cut")
    assert outcome([blob[:cut]]) is None


@SETTINGS
@given(st.sampled_from(SIZES), st.data())
def test_any_single_byte_change_is_detected(size: int, data: st.DataObject) -> None:
    plain, blob = sample(size)
    position = data.draw(st.integers(0, len(blob) - 1), label="position")
    value = data.draw(st.integers(0, 255), label="value")
    mutated = bytearray(blob)
    mutated[position] = value
    result = outcome([bytes(mutated)])
    if value == blob[position]:
        assert result == plain
    else:
        assert result is None


@SETTINGS
@given(st.sampled_from(SIZES), st.binary(min_size=1, max_size=200), st.booleans())
def test_inserted_or_appended_bytes_are_detected(size: int, extra: bytes, at_end: bool) -> None:
    _, blob = sample(size)
    middle = len(blob) // 2
    tampered = blob + extra if at_end else blob[:middle] + extra + blob[middle:]
    assert outcome([tampered]) is None


@SETTINGS
@given(st.sampled_from(SIZES), st.lists(st.integers(0, 3 * CHUNK_SIZE), max_size=6))
def test_valid_files_decrypt_whatever_the_read_sizes(size: int, cuts: list[int]) -> None:
    plain, blob = sample(size)
    assert outcome(split(blob, cuts)) == plain


@SETTINGS
@given(st.sampled_from(SIZES), st.binary(max_size=3 * (CHUNK_SIZE + 16)))
def test_valid_header_with_arbitrary_payload_is_detected(size: int, payload: bytes) -> None:
    _, blob = sample(size)
    header_and_nonce = blob[: blob.index(b"\n--- ") + 1 + 48 + 16]
    assert outcome([header_and_nonce + payload]) is None


_ARMORED = b"-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n"


def verdict(pieces: list[bytes]) -> str:
    try:
        b"".join(decrypt(pieces, [IDENTITY], obj="fuzz"))
    except IntegrityError as exc:
        return exc.message
    raise AssertionError("foreign input decrypted")


@SETTINGS
@given(
    st.sampled_from(
        [
            _ARMORED,
            _ARMORED[:20],
            b"-----BEGIN AGE ENCRYPTED FILE-----",
            b"-----BEGIN SOMETHING ELSE-----\n",
            b"age-encryption.org/v2\n-> X25519 abc\n\n--- abc\n",
            b"not an age file",
        ]
    ),
    st.lists(st.integers(0, 80), max_size=8),
)
def test_the_verdict_on_foreign_input_does_not_depend_on_the_chunking(
    blob: bytes, cuts: list[int]
) -> None:
    """The armor (and every other start) is recognised however the bytes arrive: a first read of
    one byte gives the same message as the whole file in one piece."""
    assert verdict(split(blob, cuts)) == verdict([blob])


def test_armor_is_named_when_the_first_read_is_one_byte() -> None:
    pieces = [_ARMORED[i : i + 1] for i in range(len(_ARMORED))]
    assert "ASCII-armored" in verdict(pieces)
