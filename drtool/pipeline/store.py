"""The one data path: plain -> hash -> zstd -> age -> hash -> storage, and back again."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from drtool.crypto.age import Encryption, decrypt
from drtool.crypto.keys import Identity, Recipient
from drtool.errors import IntegrityError
from drtool.pipeline.stages import Digest, ProgressFn, compress, decompress, hash_tap
from drtool.storage.base import Storage

ENCRYPTION_FORMAT = "age-v1-x25519"
COMPRESSION_FORMAT = "zstd"


@dataclass(frozen=True)
class StoredObject:
    """What the manifest records of one stored object."""

    name: str
    key: str
    size: int
    sha256: str
    plain_size: int
    plain_sha256: str
    seconds: float


def store(
    storage: Storage,
    key: str,
    name: str,
    source: Iterable[bytes],
    *,
    recipients: Sequence[Recipient],
    level: int,
    threads: int = 0,
    progress: ProgressFn | None = None,
    encryption: Encryption | None = None,
) -> StoredObject:
    """Stream ``source`` through hash, compression, encryption and hash into ``storage``.

    Pass ``encryption`` to keep its seal key (the manifest seal is derived from it)."""
    plain = Digest()
    stored = Digest()
    started = time.monotonic()
    stream = hash_tap(source, plain, progress)
    stream = compress(stream, level, threads)
    stream = (encryption or Encryption(recipients)).stream(stream)
    stream = hash_tap(stream, stored)
    written = storage.put(key, stream)
    if written != stored.size:
        raise IntegrityError(
            f"{key}: storage accepted {written} bytes, {stored.size} were sent", obj=name
        )
    return StoredObject(
        name=name,
        key=key,
        size=stored.size,
        sha256=stored.hexdigest(),
        plain_size=plain.size,
        plain_sha256=plain.hexdigest(),
        seconds=time.monotonic() - started,
    )


def check_digest(digest: Digest, *, size: int, sha256: str, what: str, obj: str) -> None:
    """IntegrityError unless the bytes that passed ``digest`` are exactly the recorded ones."""
    if digest.size != size:
        raise IntegrityError(f"{what}: {digest.size} bytes, the manifest records {size}", obj=obj)
    if digest.hexdigest() != sha256:
        raise IntegrityError(f"{what}: SHA-256 differs from the manifest", obj=obj)


def load(
    storage: Storage,
    obj: StoredObject,
    identities: Sequence[Identity],
    *,
    progress: ProgressFn | None = None,
) -> Iterator[bytes]:
    """Plaintext of a stored object, authenticated chunk by chunk; the stored and plain sizes and
    SHA-256 are checked at the end (so the last yield is followed by a check, not trust)."""
    stored = Digest()
    plain = Digest()
    stream = hash_tap(storage.get(obj.key), stored)
    stream = decrypt(stream, identities, obj=obj.name)
    stream = decompress(stream, what=obj.name)
    yield from hash_tap(stream, plain, progress)
    check_digest(
        stored, size=obj.size, sha256=obj.sha256, what=f"{obj.name} (stored)", obj=obj.name
    )
    check_digest(
        plain,
        size=obj.plain_size,
        sha256=obj.plain_sha256,
        what=f"{obj.name} (plaintext)",
        obj=obj.name,
    )
