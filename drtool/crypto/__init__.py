"""Encryption as standard age v1 files with X25519 keys; the only importer of cryptography.

The names below are loaded on first use, so importing a light submodule (``bech32``,
``fingerprint``) does not load cryptography's ciphers."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CHUNK_SIZE": "drtool.crypto.age",
    "decrypt": "drtool.crypto.age",
    "encrypt": "drtool.crypto.age",
    "Identity": "drtool.crypto.keys",
    "Recipient": "drtool.crypto.keys",
    "generate_identity": "drtool.crypto.keys",
    "identity_from_raw_key": "drtool.crypto.keys",
    "parse_identity_file": "drtool.crypto.keys",
    "parse_recipient": "drtool.crypto.keys",
    "write_identity_file": "drtool.crypto.keys",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
