"""Copying one object between two storages, bytes unchanged: server-side when both are S3 on
the same endpoint (the bytes never pass through drtool), else a bounded-memory stream that
hashes the source bytes as they pass and fails before the destination object appears when
they are not what the caller expects (size and SHA-256, e.g. from a manifest)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from drtool.errors import IntegrityError
from drtool.storage.base import Storage

# S3's CopyObject takes objects up to 5 GiB; larger ones are copied part by part
# (UploadPartCopy). A parameter so that tests exercise the multipart path with small objects.
MULTIPART_COPY_THRESHOLD_BYTES = 5 * 1024**3


@runtime_checkable
class ServerSideCopier(Protocol):
    """A backend that can copy an object from another storage without streaming it."""

    def can_copy_from(self, source: Storage) -> bool: ...

    def copy_from(self, source: Storage, key: str, *, multipart_threshold: int) -> int:
        """Copy ``key`` from ``source`` to the same key here; returns the bytes copied."""
        ...


@dataclass(frozen=True)
class Copied:
    """One copied object: its size, and how it went (``sha256`` of the source bytes as they
    passed; None for a server-side copy, whose bytes drtool never sees)."""

    key: str
    size: int
    sha256: str | None
    server_side: bool


def server_side_possible(source: Storage, dest: Storage) -> bool:
    return isinstance(dest, ServerSideCopier) and dest.can_copy_from(source)


def copy_object(
    source: Storage,
    dest: Storage,
    key: str,
    *,
    size: int | None = None,
    sha256: str | None = None,
    progress: Callable[[int], None] | None = None,
    multipart_threshold: int = MULTIPART_COPY_THRESHOLD_BYTES,
    server_side: bool = True,
) -> Copied:
    """Copy ``key`` from ``source`` to ``dest``. Streaming, a source whose bytes do not have
    ``size`` / ``sha256`` raises IntegrityError and ``dest`` is left without the object.
    Server-side, the caller verifies the destination's bytes (``digest_of``) afterwards."""
    if server_side and isinstance(dest, ServerSideCopier) and dest.can_copy_from(source):
        copied = dest.copy_from(source, key, multipart_threshold=multipart_threshold)
        if progress is not None:
            progress(copied)
        return Copied(key, copied, None, True)
    digest = hashlib.sha256()
    counted = [0]
    stream = checked_stream(source.get(key), key, digest, counted, size, sha256, progress)
    dest.put(key, stream)
    return Copied(key, counted[0], digest.hexdigest(), False)


def checked_stream(
    chunks: Iterable[bytes],
    key: str,
    digest: hashlib._Hash,
    counted: list[int],
    size: int | None,
    sha256: str | None,
    progress: Callable[[int], None] | None,
) -> Iterator[bytes]:
    """Pass ``chunks`` on, hashing them; raise (so the consuming put aborts) as soon as there
    are more than ``size`` bytes, and after the last chunk if size or SHA-256 differ."""
    for chunk in chunks:
        counted[0] += len(chunk)
        if size is not None and counted[0] > size:
            raise IntegrityError(
                f"{key}: the source has more than the {size} bytes expected", obj=key
            )
        digest.update(chunk)
        if progress is not None:
            progress(len(chunk))
        yield chunk
    if size is not None and counted[0] != size:
        raise IntegrityError(f"{key}: the source has {counted[0]} bytes, expected {size}", obj=key)
    if sha256 is not None and digest.hexdigest() != sha256:
        raise IntegrityError(f"{key}: the source's SHA-256 differs from the manifest", obj=key)


def digest_of(storage: Storage, key: str) -> tuple[int, str]:
    """Size and SHA-256 of the bytes stored at ``key`` (no key needed: stored bytes)."""
    digest = hashlib.sha256()
    size = 0
    for chunk in storage.get(key):
        size += len(chunk)
        digest.update(chunk)
    return size, digest.hexdigest()
