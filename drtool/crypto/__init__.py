"""Encryption as standard age v1 files with X25519 keys; the only importer of cryptography."""

from drtool.crypto.age import CHUNK_SIZE, decrypt, encrypt
from drtool.crypto.keys import (
    Identity,
    Recipient,
    generate_identity,
    identity_from_raw_key,
    parse_identity_file,
    parse_recipient,
    write_identity_file,
)

__all__ = [
    "CHUNK_SIZE",
    "Identity",
    "Recipient",
    "decrypt",
    "encrypt",
    "generate_identity",
    "identity_from_raw_key",
    "parse_identity_file",
    "parse_recipient",
    "write_identity_file",
]
