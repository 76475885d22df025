"""Key use cases: recipients to encrypt to, identities to decrypt with, generation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from drtool.config import Config
from drtool.crypto.keys import (
    Identity,
    Recipient,
    generate_identity,
    identity_from_raw_key,
    parse_identity_file,
    parse_recipient,
    write_identity_file,
)
from drtool.errors import KeyMissingError, UsageError
from drtool.log import get_logger
from drtool.pipeline.store import COMPRESSION_FORMAT, ENCRYPTION_FORMAT

log = get_logger("keys")


@dataclass(frozen=True)
class KeyResult:
    recipient: str
    identity_file: str | None = None


def configured_identities(config: Config, required: bool = True) -> list[Identity]:
    """Identities from ``DRTOOL_ENCRYPTION__KEY`` and/or ``encryption.identity_file``."""
    found: list[Identity] = []
    if config.encryption.key is not None:
        found.append(identity_from_raw_key(config.encryption.key.get_secret_value()))
    if config.encryption.identity_file is not None:
        found += parse_identity_file(config.resolve(config.encryption.identity_file))
    if not found and required:
        raise KeyMissingError(
            "this needs the decryption identity, and none is configured",
            hint="set encryption.identity_file (or DRTOOL_ENCRYPTION__KEY) on this host",
        )
    return found


def configured_recipients(config: Config) -> list[Recipient]:
    """``encryption.recipients`` plus the public side of a configured key (symmetric set-ups)."""
    recipients = [parse_recipient(text) for text in config.encryption.recipients]
    if config.encryption.key is not None or config.encryption.identity_file is not None:
        for identity in configured_identities(config, required=False):
            own = identity.recipient()
            if own not in recipients:
                recipients.append(own)
    if not recipients:
        raise UsageError(
            "no encryption recipient is configured: backups are always encrypted",
            hint="set encryption.recipients (run `drtool keys generate --out FILE` to make a key)",
        )
    return recipients


def generate_key(out: Path) -> KeyResult:
    """A new identity written 0600 in age's format; returns its public recipient."""
    if out.exists():
        raise UsageError(
            f"{out} already exists; refusing to overwrite a key", hint="choose another --out"
        )
    identity = generate_identity()
    write_identity_file(out, identity)
    os.chmod(out, 0o600)
    return KeyResult(recipient=identity.recipient().encode(), identity_file=str(out))


def recipient_of(identity_file: Path) -> KeyResult:
    identities = parse_identity_file(identity_file)
    if not identities:
        raise UsageError(f"{identity_file} holds no age identity (AGE-SECRET-KEY-1...)")
    return KeyResult(recipient=identities[0].recipient().encode(), identity_file=str(identity_file))


def compression_field(config: Config) -> dict[str, object]:
    """A manifest's ``compression``: how its objects are compressed."""
    return {"algorithm": COMPRESSION_FORMAT, "level": config.compression.level}


def encryption_field(recipients: list[Recipient]) -> dict[str, object]:
    """A manifest's ``encryption``: the format and recipient fingerprints, never keys."""
    return {"format": ENCRYPTION_FORMAT, "recipients": [r.fingerprint() for r in recipients]}
