"""The Storage protocol every backend implements, its records, key validation, and the
stream helpers backends share (fixed-size parts, bounded in-order concurrency)."""

from __future__ import annotations

import contextlib
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

from drtool.errors import NotFoundInStorage, UsageError

# ~1 MiB: large enough for throughput, small enough that many streams fit in memory.
READ_CHUNK_BYTES = 1024 * 1024
MAX_KEY_LENGTH = 900
_SEGMENT = re.compile(r"^[A-Za-z0-9_.=+-]+$")
A = TypeVar("A")
T = TypeVar("T")


@dataclass(frozen=True)
class ObjectInfo:
    """A complete stored object; ``modified`` is tz-aware UTC."""

    key: str
    size: int
    modified: datetime
    locked_until: datetime | None = None


@dataclass(frozen=True)
class PendingUpload:
    """An unfinished upload: an S3 multipart upload or a local leftover temp file."""

    key: str
    upload_id: str
    started: datetime


@runtime_checkable
class Storage(Protocol):
    """Keys are relative paths checked by :func:`check_key`; writes are atomic."""

    description: str

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """Stream ``chunks`` into ``key``; visible only once complete. Returns bytes stored."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def put_if(self, key: str, data: bytes, *, etag: str | None) -> str | None:
        """A conditional write: with ``etag=None`` create ``key`` only if it is absent, else
        replace it only if its current ETag is ``etag`` (not if it changed or is gone).
        Returns the new ETag, or None when the condition did not hold. A key written this
        way is written only this way (an unconditional put does not take part)."""
        ...

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        """The object and the ETag that :meth:`put_if` compares; NotFoundInStorage if absent."""
        ...

    def get(self, key: str) -> Iterator[bytes]:
        """Stream the object in ~1 MiB chunks; NotFoundInStorage (raised at call) if absent."""
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def stat(self, key: str) -> ObjectInfo: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every complete object whose key starts with ``prefix``, sorted by key."""
        ...

    def delete(self, key: str) -> None: ...

    def pending_uploads(self, prefix: str) -> Iterator[PendingUpload]: ...

    def abort_upload(self, upload: PendingUpload) -> None: ...


class DerivedReads:
    """``exists`` and ``get_bytes`` written once, in terms of a backend's ``stat`` and ``get``:
    every backend (and wrapper) inherits them, so they cannot drift apart."""

    def stat(self, key: str) -> ObjectInfo:
        raise NotImplementedError

    def get(self, key: str) -> Iterator[bytes]:
        raise NotImplementedError

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.get(key))

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except NotFoundInStorage:
            return False
        return True


def _invalid(what: str, value: str, why: str) -> UsageError:
    shown = repr(value if len(value) <= 80 else value[:80] + "...")
    return UsageError(f"invalid storage {what} {shown}: {why}")


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise UsageError."""
    if not isinstance(key, str) or not key:
        raise _invalid("key", str(key), "empty")
    if len(key) > MAX_KEY_LENGTH:
        raise _invalid("key", key, f"longer than {MAX_KEY_LENGTH} characters")
    if key.startswith("/") or key.endswith("/"):
        raise _invalid("key", key, "must be relative and not end in '/'")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise _invalid("key", key, "empty, '.' or '..' path segment")
        if not _SEGMENT.match(segment):
            raise _invalid("key", key, "segments may contain only A-Z a-z 0-9 . _ = + -")
    return key


# SPEC "Storage layout": Object Lock keeps data objects, manifests and audit records, which are
# written once. Everything else is state that is rewritten or removed (the scheduler's leases
# in scheduler/, job-run records in runs/, the archive journal, void markers) or a record of a
# check (drills/, verifications/, restores/), and is never locked: a lock would keep every
# rewritten version for the whole retention period.
LOCKED_TOP_DIRS = frozenset({"backups", "exports", "archive", "streams", "audit"})
UNLOCKED_NAMES = frozenset({"void.json"})  # archive/<policy>/<yyyy>/<mm>/<id>/void.json
ARCHIVE_JOURNAL_DIR = "journal"  # archive/<policy>/journal/<id>.json
# The audit chain's head pointer is rewritten by every append (compare-and-swap); the records
# under audit/<yyyy>/<mm>/ are written once and locked.
AUDIT_HEAD = "audit/head.json"


def object_lock_applies(key: str) -> bool:
    """Whether a backend with Object Lock configured puts ``key`` under retention."""
    segments = key.split("/")
    if key == AUDIT_HEAD:
        return False
    if segments[0] == "streams" and len(segments) == 3 and segments[2] == "state.json":
        return False  # the stream's state record, rewritten every cycle
    if segments[0] not in LOCKED_TOP_DIRS or segments[-1] in UNLOCKED_NAMES:
        return False
    return not (segments[0] == "archive" and segments[2:3] == [ARCHIVE_JOURNAL_DIR])


def content_type(key: str) -> str:
    """The Content-Type an object is stored with: manifests and records are JSON."""
    return "application/json" if key.endswith(".json") else "application/octet-stream"


def check_prefix(prefix: str) -> str:
    """A listing prefix: ``''``, or a key optionally followed by one ``/``."""
    if prefix == "":
        return prefix
    check_key(prefix.removesuffix("/"))
    return prefix


def close_quietly(chunks: Iterable[bytes]) -> None:
    """Close a producer that a failed put stopped reading, so e.g. pg_dump is killed now."""
    close = getattr(chunks, "close", None)
    if callable(close):
        # The put's own error is the one worth reporting.
        with contextlib.suppress(Exception):
            close()


def fixed_parts(chunks: Iterable[bytes], part_size: int) -> Iterator[bytearray]:
    """Re-chunk a stream into parts of exactly ``part_size`` bytes; only the last is shorter.

    Yields at least one (possibly empty) part. Each part is a fresh buffer the caller owns,
    so memory is one part being filled plus whatever the caller keeps."""
    part = bytearray(part_size)
    filled = 0
    yielded = False
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
        while view:
            take = min(part_size - filled, len(view))
            part[filled : filled + take] = view[:take]
            filled += take
            view = view[take:]
            if filled == part_size:
                yield part
                yielded = True
                del part  # before allocating the next one: the caller owns that buffer now
                part = bytearray(part_size)
                filled = 0
    if filled or not yielded:
        del part[filled:]
        yield part


def drain_then(ahead: list[T], rest: Iterator[T]) -> Iterator[T]:
    """Yield and forget ``ahead``, then ``rest``; itertools.chain would keep ``ahead`` alive."""
    while ahead:
        yield ahead.pop(0)
    yield from rest


def split_chunks(data: bytes, size: int = READ_CHUNK_BYTES) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def ordered_map(fn: Callable[[A], T], items: Iterable[A], concurrency: int) -> Iterator[T]:
    """``map(fn, items)`` on a thread pool, results in order, at most concurrency + 1 held."""
    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="drtool-storage")
    queue: deque[Future[T]] = deque()
    try:
        for item in items:
            queue.append(pool.submit(fn, item))
            if len(queue) > concurrency:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()
    finally:
        # A consumer that stops early must not wait for reads it no longer wants.
        pool.shutdown(wait=False, cancel_futures=True)
