"""Fingerprints of secret values: salted, deliberately slow scrypt, so that a manifest tells
whether a value changed without letting anyone who holds it test guesses cheaply."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any

ALGORITHM = "scrypt"
# N=2^14, r=8, p=1: 16 MiB of memory and about 35 ms per fingerprint on a 2020s server core
# (docs/performance.md): a guess costs the same to an attacker, a bundle of ten values ~0.4 s.
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
LENGTH_BYTES = 32
SALT_BYTES = 16
MAX_N = 2**20  # a manifest asking for more is refused: status must stay cheap


@dataclass(frozen=True)
class FingerprintParams:
    """One bundle's fingerprint parameters, recorded in its manifest."""

    salt: bytes
    n: int = DEFAULT_N
    r: int = DEFAULT_R
    p: int = DEFAULT_P
    length: int = LENGTH_BYTES

    @classmethod
    def new(cls) -> FingerprintParams:
        return cls(salt=os.urandom(SALT_BYTES))

    def to_doc(self) -> dict[str, Any]:
        return {
            "algorithm": ALGORITHM,
            "n": self.n,
            "r": self.r,
            "p": self.p,
            "length": self.length,
            "salt": base64.b64encode(self.salt).decode("ascii"),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> FingerprintParams:
        """ValueError for an unknown algorithm or parameters out of range."""
        if doc.get("algorithm") != ALGORITHM:
            raise ValueError(f"unknown fingerprint algorithm {doc.get('algorithm')!r}")
        n, r, p = int(doc["n"]), int(doc["r"]), int(doc["p"])
        length = int(doc.get("length", LENGTH_BYTES))
        if n < 2 or n > MAX_N or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
            raise ValueError(f"fingerprint parameters out of range (n={n}, r={r}, p={p})")
        if not 16 <= length <= 64:
            raise ValueError(f"fingerprint length {length} out of range")
        return cls(salt=base64.b64decode(doc["salt"]), n=n, r=r, p=p, length=length)

    def fingerprint(self, kind: str, name: str, value: bytes) -> str:
        """``scrypt(kind ":" name NUL value)``, hex. The name is part of the input so that two
        entries holding the same value do not show equal fingerprints."""
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt  # only when computed

        kdf = Scrypt(salt=self.salt, length=self.length, n=self.n, r=self.r, p=self.p)
        data = kind.encode() + b":" + name.encode("utf-8", "surrogateescape") + b"\0" + value
        return kdf.derive(data).hex()
