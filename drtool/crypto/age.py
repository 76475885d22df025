"""Streaming age v1 (age-encryption.org/v1): X25519 stanzas, MAC'd header, STREAM payload.

``docs/format.md`` documents every byte; any error in encrypted input is an IntegrityError.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from drtool.crypto.keys import Identity, Recipient
from drtool.errors import IntegrityError, KeyMissingError, UsageError

CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
FILE_KEY_SIZE = 16
PAYLOAD_NONCE_SIZE = 16
# Header size limit: age sets none, but without one a stream of garbage with no footer line
# would be buffered whole. 1 MiB is thousands of stanzas.
MAX_HEADER_BYTES = 1024 * 1024

VERSION_LINE = b"age-encryption.org/v1\n"
_VERSION_PREFIX = b"age-encryption.org/"
_ARMOR_PREFIX = b"-----BEGIN AGE ENCRYPTED FILE-----"
_STANZA_PREFIX = b"-> "
_FOOTER_PREFIX = b"--- "
_X25519_TYPE = b"X25519"
_X25519_LABEL = b"age-encryption.org/v1/X25519"
# drtool-specific derivation from a file key: the manifest seal (docs/format.md).
SEAL_LABEL = b"drtool.manifest-seal/v1"
_COLUMNS = 64
_ZERO_NONCE = bytes(12)
_ARGUMENT = re.compile(rb"[\x21-\x7e]+")
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*")

_Bytes = bytes | bytearray | memoryview

_WRONG_KEY_HINT = "check encryption.identity_file / DRTOOL_ENCRYPTION__KEY"
_DAMAGED_HINT = "the stored object is corrupted, truncated or tampered with; use another copy"


@dataclass(frozen=True)
class _Stanza:
    args: list[bytes]
    body: bytes


@dataclass(frozen=True)
class _Header:
    stanzas: list[_Stanza]
    mac_input: bytes  # the header up to and including the footer's "---"
    mac: bytes


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _b64encode(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _b64decode(text: bytes) -> bytes | None:
    """Strict unpadded base64 (RFC 4648 §3.5 canonical), else None; age rejects anything else."""
    if not _BASE64.fullmatch(text) or len(text) % 4 == 1:
        return None
    data = base64.b64decode(text + b"=" * (-len(text) % 4))
    return data if _b64encode(data) == text else None


def _wrap_lines(data: bytes) -> bytes:
    # The body ends with a line shorter than 64 columns, empty if the last full line is 64.
    text = _b64encode(data)
    lines = [text[i : i + _COLUMNS] for i in range(0, len(text), _COLUMNS)]
    if not lines or len(lines[-1]) == _COLUMNS:
        lines.append(b"")
    return b"\n".join(lines) + b"\n"


def _stream_nonce(counter: int, last: bool) -> bytes:
    # STREAM nonce: 11-byte big-endian chunk counter, then 0x01 on the final chunk only.
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _blocks(chunks: Iterable[_Bytes], size: int) -> Iterator[tuple[_Bytes, bool]]:
    """Re-cut a byte stream into ``size``-byte blocks; the flagged last one may be short or empty.

    A full block is held back until more data arrives, because STREAM must know whether a
    chunk is final before sealing or opening it. Large inputs are sliced, not copied.
    """
    pending = bytearray()
    for data in chunks:
        view = memoryview(data)
        if pending:
            take = size - len(pending)
            pending += view[:take]
            view = view[take:]
            if not view:
                continue
            yield pending, False
            pending = bytearray()
        while len(view) > size:
            yield view[:size], False
            view = view[size:]
        pending += view
    yield pending, True


def _build_header(file_key: bytes, recipients: Sequence[Recipient]) -> bytes:
    parts = [VERSION_LINE]
    for recipient in recipients:
        ephemeral = X25519PrivateKey.from_private_bytes(os.urandom(32))
        share = ephemeral.public_key().public_bytes_raw()
        try:
            shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient.public_key))
        except ValueError:  # a low-order point: every shared secret would be zero
            raise UsageError(
                f"recipient {recipient.encode()[:12]}... is not a usable X25519 public key",
                hint="check encryption.recipients",
            ) from None
        wrap_key = _hkdf(shared, share + recipient.public_key, _X25519_LABEL)
        body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
        parts += [_STANZA_PREFIX, _X25519_TYPE, b" ", _b64encode(share), b"\n", _wrap_lines(body)]
    parts.append(_FOOTER_PREFIX[:3])
    mac_input = b"".join(parts)
    mac = hmac.new(_hkdf(file_key, b"", b"header"), mac_input, hashlib.sha256).digest()
    return mac_input + b" " + _b64encode(mac) + b"\n"


class Encryption:
    """One age file being written: its header, and the seal key derived from its file key.

    The seal key (HKDF of the file key, label ``drtool.manifest-seal/v1``) lets the writer MAC
    the manifest so that only a holder of this object's file key could have produced it."""

    def __init__(self, recipients: Sequence[Recipient]) -> None:
        if not recipients:
            raise UsageError("no age recipient to encrypt to", hint="set encryption.recipients")
        file_key = os.urandom(FILE_KEY_SIZE)
        nonce = os.urandom(PAYLOAD_NONCE_SIZE)
        # Built eagerly so that a bad recipient fails the call, not the first read.
        self.header = _build_header(file_key, recipients) + nonce
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self.seal_key = _hkdf(file_key, b"", SEAL_LABEL)

    def stream(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        return _encrypt(self.header, self._aead, chunks)


def encrypt(chunks: Iterable[bytes], recipients: Sequence[Recipient]) -> Iterator[bytes]:
    """Encrypt a byte stream to ``recipients`` as one age v1 file, yielded incrementally.

    Input chunks may have any size; at most one 64 KiB chunk is buffered. Chunks must not be
    mutated after being handed over.
    """
    return Encryption(recipients).stream(chunks)


def open_seal_key(
    chunks: Iterable[bytes], identities: Sequence[Identity], *, obj: str | None = None
) -> bytes:
    """The seal key of an age file, from its header alone (the payload is not read)."""
    if not identities:
        raise KeyMissingError(
            "no identity to decrypt with",
            hint="set encryption.identity_file or DRTOOL_ENCRYPTION__KEY",
        )
    run = _Decryptor(obj)
    header_bytes, _rest = run.read_header(iter(chunks))
    header = run.parse_header(header_bytes)
    file_key = run.unwrap(header.stanzas, list(identities))
    expected = hmac.new(_hkdf(file_key, b"", b"header"), header.mac_input, hashlib.sha256)
    if not hmac.compare_digest(expected.digest(), header.mac):
        run.fail("header MAC mismatch (the header was modified)")
    return _hkdf(file_key, b"", SEAL_LABEL)


def seal(data: bytes, key: bytes) -> str:
    """HMAC-SHA256 of ``data`` under a seal key, hex."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def seal_matches(data: bytes, key: bytes, mac_hex: str) -> bool:
    return hmac.compare_digest(seal(data, key), mac_hex)


def _encrypt(header: bytes, aead: ChaCha20Poly1305, chunks: Iterable[bytes]) -> Iterator[bytes]:
    yield header
    for counter, (block, last) in enumerate(_blocks(chunks, CHUNK_SIZE)):
        yield aead.encrypt(_stream_nonce(counter, last), block, None)


def decrypt(
    chunks: Iterable[bytes], identities: Sequence[Identity], *, obj: str | None = None
) -> Iterator[bytes]:
    """Decrypt an age v1 stream, yielding plaintext as each 64 KiB chunk authenticates.

    Any defect in the input (bad header, wrong key, bad MAC, corrupted, reordered or truncated
    chunks, trailing data) raises IntegrityError naming ``obj`` and, for payload defects, the
    0-based ``chunk``; nothing else escapes for any input bytes.
    """
    if not identities:
        raise KeyMissingError(
            "decryption needs an age identity and none is configured",
            hint="set encryption.identity_file or DRTOOL_ENCRYPTION__KEY",
        )
    return _Decryptor(obj).run(iter(chunks), list(identities))


class _Decryptor:
    """One decryption run: carries the object name into every error."""

    def __init__(self, obj: str | None) -> None:
        self.obj = obj

    def fail(self, problem: str, hint: str = _DAMAGED_HINT, chunk: int | None = None) -> NoReturn:
        where = f"object {self.obj}" if self.obj else "encrypted object"
        raise IntegrityError(f"{where}: {problem}", hint, obj=self.obj, chunk=chunk)

    def run(self, source: Iterator[bytes], identities: list[Identity]) -> Iterator[bytes]:
        header_bytes, rest = self.read_header(source)
        header = self.parse_header(header_bytes)
        file_key = self.unwrap(header.stanzas, identities)
        expected = hmac.new(_hkdf(file_key, b"", b"header"), header.mac_input, hashlib.sha256)
        if not hmac.compare_digest(expected.digest(), header.mac):
            self.fail("header MAC mismatch (the header was modified)")
        while len(rest) < PAYLOAD_NONCE_SIZE:
            data = next(source, None)
            if data is None:
                self.fail("truncated: the payload nonce is missing", chunk=0)
            rest += data
        aead = ChaCha20Poly1305(_hkdf(file_key, bytes(rest[:PAYLOAD_NONCE_SIZE]), b"payload"))
        payload: Iterable[_Bytes] = itertools.chain((rest[PAYLOAD_NONCE_SIZE:],), source)
        yield from self.open_payload(aead, payload)

    def read_header(self, source: Iterator[bytes]) -> tuple[bytes, bytearray]:
        """Buffer up to the footer line; return it and the bytes already read past it."""
        buf = bytearray()
        scanned = 0
        while True:
            self.check_start(buf, final=False)
            # A line starting "--- " can only be the footer: stanza lines start "-> " and body
            # lines are base64, so the first match ends the header (or the header is invalid).
            footer = buf.find(b"\n" + _FOOTER_PREFIX, max(0, scanned - len(_FOOTER_PREFIX)))
            if footer >= 0:
                end = buf.find(b"\n", footer + 1)
                if end >= 0:
                    return bytes(buf[: end + 1]), buf[end + 1 :]
                scanned = footer + len(_FOOTER_PREFIX)  # resume the search at this footer
            else:
                scanned = len(buf)
            if len(buf) > MAX_HEADER_BYTES:
                self.fail(f"header: no end line within {MAX_HEADER_BYTES} bytes")
            data = next(source, None)
            if data is None:
                self.check_start(buf, final=True)
                self.fail("truncated header (no end line)" if buf else "empty object")
            buf += data

    def check_start(self, buf: bytearray, *, final: bool) -> None:
        """Fail once the start cannot be an age v1 file. While the bytes so far could still be
        the ASCII armor marker, wait for more (unless the input ended): the verdict must not
        depend on how the bytes were chunked (a first read may be a single byte)."""
        checked = min(len(buf), len(VERSION_LINE))
        if buf[:checked] == VERSION_LINE[:checked]:
            return
        start = bytes(buf[: len(_ARMOR_PREFIX)])
        if not final and len(start) < len(_ARMOR_PREFIX) and _ARMOR_PREFIX.startswith(start):
            return
        self.reject_start(start)

    def reject_start(self, start: bytes) -> NoReturn:
        if start.startswith(_ARMOR_PREFIX):
            self.fail(
                "ASCII-armored age is not supported",
                hint="drtool reads binary age files; `age -d` reads armored ones",
            )
        if start.startswith(_VERSION_PREFIX):
            self.fail("unsupported age format version (only age-encryption.org/v1 is read)")
        self.fail("not an age v1 file (bad version line)")

    def parse_header(self, header: bytes) -> _Header:
        """Parse a complete header (ending with the footer line) strictly per the v1 ABNF."""
        lines = header.split(b"\n")[:-1]  # the header ends with "\n"
        stanzas: list[_Stanza] = []
        i = 1
        while i < len(lines) - 1:
            if not lines[i].startswith(_STANZA_PREFIX):
                self.fail(f"header line {i + 1}: expected a stanza or the end line")
            args = lines[i][len(_STANZA_PREFIX) :].split(b" ")
            if not all(_ARGUMENT.fullmatch(arg) for arg in args):
                self.fail(f"header line {i + 1}: malformed stanza arguments")
            i += 1
            body_start = i
            while i < len(lines) - 1 and len(lines[i]) == _COLUMNS:
                i += 1
            if i >= len(lines) - 1 or len(lines[i]) > _COLUMNS:
                self.fail(f"header line {i + 1}: stanza body has no final short line")
            body = _b64decode(b"".join(lines[body_start : i + 1]))
            if body is None:
                self.fail(f"header line {i + 1}: stanza body is not canonical base64")
            stanzas.append(_Stanza(args, body))
            i += 1
        footer = lines[-1]
        if not stanzas:
            self.fail("header has no recipient stanza")
        if i != len(lines) - 1 or not footer.startswith(_FOOTER_PREFIX):
            self.fail("header end line is malformed")
        mac = _b64decode(footer[len(_FOOTER_PREFIX) :])
        if mac is None or len(mac) != 32:
            self.fail("header MAC is malformed")
        footer_start = len(header) - len(footer) - 1
        mac_input = header[: footer_start + len(b"---")]  # the MAC covers "---", not the space
        return _Header(stanzas, mac_input, mac)

    def unwrap(self, stanzas: list[_Stanza], identities: list[Identity]) -> bytes:
        """The file key from the first X25519 stanza an identity opens; other types are skipped."""
        keys = [
            (X25519PrivateKey.from_private_bytes(i.private_key), i.recipient().public_key)
            for i in identities
        ]
        for stanza in stanzas:
            if stanza.args[0] != _X25519_TYPE:
                continue
            share = _b64decode(stanza.args[1]) if len(stanza.args) == 2 else None
            # Length checks come before any decryption attempt (partitioning-oracle defence).
            if share is None or len(share) != 32 or len(stanza.body) != FILE_KEY_SIZE + TAG_SIZE:
                self.fail("malformed X25519 recipient stanza")
            peer = X25519PublicKey.from_public_bytes(share)
            for private, public in keys:
                try:
                    shared = private.exchange(peer)
                except ValueError:  # OpenSSL refuses an all-zero (low-order) shared secret
                    shared = bytes(32)
                if shared == bytes(32):
                    self.fail("X25519 stanza has a low-order ephemeral share")
                wrap_key = _hkdf(shared, share + public, _X25519_LABEL)
                try:
                    return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, stanza.body, None)
                except InvalidTag:
                    continue
        self.fail("no identity matches any recipient stanza (wrong key?)", hint=_WRONG_KEY_HINT)

    def open_payload(self, aead: ChaCha20Poly1305, payload: Iterable[_Bytes]) -> Iterator[bytes]:
        index = 0
        for block, last in _blocks(payload, ENCRYPTED_CHUNK_SIZE):
            if not last:
                yield self.open_chunk(aead, block, index, final=False)
                index += 1
                continue
            if len(block) == 0:
                self.fail(
                    "truncated: ends without a final chunk" if index else "truncated: no payload",
                    chunk=index,
                )
            if len(block) < TAG_SIZE:
                self.fail(f"truncated: chunk {index} is shorter than its tag", chunk=index)
            plain = self.open_chunk(aead, block, index, final=True)
            if not plain and index:
                self.fail(f"chunk {index}: empty final chunk after data", chunk=index)
            if plain:
                yield plain

    def open_chunk(self, aead: ChaCha20Poly1305, block: _Bytes, index: int, final: bool) -> bytes:
        try:
            return aead.decrypt(_stream_nonce(index, final), block, None)
        except InvalidTag:
            pass
        # Authenticates with the other flag: the chunk is intact, its neighbours are not.
        try:
            aead.decrypt(_stream_nonce(index, not final), block, None)
        except InvalidTag:
            self.fail(
                f"chunk {index} failed authentication (corrupted, truncated, reordered or spliced)",
                chunk=index,
            )
        if final:
            self.fail(f"truncated: the object ends after chunk {index}", chunk=index + 1)
        self.fail(f"trailing data after final chunk {index}", chunk=index)
