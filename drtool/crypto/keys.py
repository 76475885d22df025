"""age X25519 keys: recipients (age1...), identities (AGE-SECRET-KEY-1...), raw keys, key files.

Messages never contain key material: user input is named by where it came from, not echoed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from drtool.crypto import bech32
from drtool.errors import UsageError
from drtool.log import get_logger

KEY_BYTES = 32
RECIPIENT_HRP = "age"
IDENTITY_HRP = "age-secret-key-"
IDENTITY_PREFIX = "AGE-SECRET-KEY-1"
RAW_KEY_VARIABLE = "DRTOOL_ENCRYPTION__KEY"
IDENTITY_FILE_KEY = "encryption.identity_file"

_HEX = re.compile(r"[0-9a-fA-F]*")
_BASE64_ANY = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_RAW_KEY_HINT = (
    "generate one with `openssl rand -base64 32`, or use encryption.identity_file "
    "with an age identity (`drtool keys generate`)"
)

log = get_logger("crypto")


@dataclass(frozen=True)
class Recipient:
    """An age X25519 public key: files encrypted to it need the matching identity."""

    public_key: bytes

    def __post_init__(self) -> None:
        if len(self.public_key) != KEY_BYTES:
            raise ValueError("an X25519 recipient is 32 bytes")

    def encode(self) -> str:
        return bech32.encode(RECIPIENT_HRP, self.public_key)

    def fingerprint(self) -> str:
        """A short stable id for manifests: sha256 of the ``age1...`` text, 16 hex chars."""
        return hashlib.sha256(self.encode().encode("ascii")).hexdigest()[:16]


@dataclass(frozen=True)
class Identity:
    """An age X25519 private key (the 32 bytes age-keygen draws); never shown by repr."""

    private_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.private_key) != KEY_BYTES:
            raise ValueError("an X25519 identity is 32 bytes")

    def __repr__(self) -> str:
        return f"Identity(recipient={self.recipient().encode()})"

    def recipient(self) -> Recipient:
        key = X25519PrivateKey.from_private_bytes(self.private_key)
        return Recipient(key.public_key().public_bytes_raw())

    def encode(self) -> str:
        # age-keygen prints the identity uppercase; the checksum is over the lowercase form.
        return bech32.encode(IDENTITY_HRP, self.private_key).upper()


def _abbrev(text: str) -> str:
    """The first characters of a user-supplied key, enough to say which one without leaking it."""
    return repr(text[:8] + "..." if len(text) > 8 else text)


def parse_recipient(text: str) -> Recipient:
    """Parse an ``age1...`` recipient; UsageError naming only its prefix if it is malformed."""
    value = text.strip()
    hint = "an age X25519 recipient is 'age1' and 58 more characters, as `age-keygen -y` prints"
    if value.upper().startswith(IDENTITY_PREFIX[:-1]):
        raise UsageError(
            "a secret age identity was given where a public recipient is expected",
            hint="give the public key (age1...) instead; `drtool keys recipient` prints it",
        )
    try:
        hrp, data = bech32.decode(value)
    except bech32.Bech32Error as exc:
        raise UsageError(f"invalid age recipient {_abbrev(value)}: {exc}", hint=hint) from None
    if hrp != RECIPIENT_HRP:
        raise UsageError(
            f"unsupported recipient {_abbrev(value)}: only age X25519 recipients (age1...) "
            "are supported",
            hint=hint,
        )
    if len(data) != KEY_BYTES:
        raise UsageError(
            f"invalid age recipient {_abbrev(value)}: {len(data)} bytes instead of 32", hint=hint
        )
    try:
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(data))
    except ValueError:  # a low-order point: encrypting to it would protect nothing
        raise UsageError(
            f"invalid age recipient {_abbrev(value)}: not a usable X25519 public key", hint=hint
        ) from None
    return Recipient(data)


def _parse_identity(text: str, where: str) -> Identity:
    hint = "an age identity is one AGE-SECRET-KEY-1... line, as age-keygen writes it"
    try:
        hrp, data = bech32.decode(text)
    except bech32.Bech32Error as exc:
        raise UsageError(f"{where}: invalid age identity ({exc})", hint=hint) from None
    if hrp != IDENTITY_HRP or len(data) != KEY_BYTES:
        raise UsageError(f"{where}: not an age X25519 identity", hint=hint)
    return Identity(data)


def parse_identity_file(path: Path) -> list[Identity]:
    """Read an age identity file: ``#`` comments, blank lines, one AGE-SECRET-KEY-1 per line."""
    where = f"{IDENTITY_FILE_KEY} {path}"
    try:
        raw = path.read_bytes()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UsageError(
            f"{where} does not exist",
            hint="set encryption.identity_file to the age identity that can decrypt the backups",
        ) from None
    except OSError as exc:
        raise UsageError(f"{where} cannot be read: {exc.strerror}") from None
    if mode & 0o077:
        log.warning("%s is readable by other users (mode %o); chmod 600 it", where, mode & 0o777)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{where} is not a text age identity file") from None
    identities: list[Identity] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.upper().startswith(IDENTITY_PREFIX):
            raise UsageError(
                f"{where} line {number}: not an age X25519 identity (AGE-SECRET-KEY-1...)",
                hint="plugin, post-quantum, SSH and passphrase identities are not supported",
            )
        identities.append(_parse_identity(line, f"{where} line {number}"))
    if not identities:
        raise UsageError(f"{where} contains no identity", hint="generate one: drtool keys generate")
    return identities


def _decode_raw_key(value: str) -> bytes | None:
    # An even-length hex string is read as hex: a 32-byte key in base64 is 43 or 44 characters,
    # so no valid base64 key is mistaken for hex.
    if _HEX.fullmatch(value) and len(value) % 2 == 0:
        return bytes.fromhex(value)
    if not _BASE64_ANY.fullmatch(value):
        return None
    urlsafe = "-" in value or "_" in value
    if urlsafe and ("+" in value or "/" in value):
        return None
    bare = value.rstrip("=")
    padded = bare + "=" * (-len(bare) % 4)
    if len(bare) % 4 == 1 or (bare != value and padded != value):
        return None
    try:
        return base64.b64decode(padded, altchars=b"-_" if urlsafe else None, validate=True)
    except binascii.Error:
        return None


def identity_from_raw_key(text: str) -> Identity:
    """The X25519 identity whose private key is a 32-byte key given as base64(url) or hex."""
    raw = _decode_raw_key(text.strip())
    if raw is None:
        got = "text that is none of these"
    elif len(raw) != KEY_BYTES:
        got = f"{len(raw)} bytes"
    else:
        return Identity(raw)
    raise UsageError(
        f"{RAW_KEY_VARIABLE} must be exactly 32 bytes encoded as base64, base64url or hex "
        f"(got {got})",
        hint=_RAW_KEY_HINT,
    )


def generate_identity() -> Identity:
    """A new random identity, drawn exactly as age-keygen does (32 CSPRNG bytes)."""
    return Identity(os.urandom(KEY_BYTES))


def write_identity_file(path: Path, identity: Identity, *, created: datetime | None = None) -> None:
    """Write ``identity`` in age-keygen's format to a new 0600 file; never overwrite one."""
    when = (created or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    content = (
        f"# created: {when}\n# public key: {identity.recipient().encode()}\n{identity.encode()}\n"
    )
    try:
        # O_EXCL with mode 0600: the key is never readable by others, not even for an instant,
        # and an existing identity (maybe the only copy) is never clobbered.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise UsageError(
            f"{path} already exists; refusing to overwrite an identity",
            hint="choose another path; keep the old file if anything was encrypted to it",
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot create identity file {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
