"""FaultyStorage: a wrapper that injects real faults (a stream cut after N bytes, corrupted
reads) into any Storage, so tests exercise the same failure paths as production."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from drtool.errors import StorageError
from drtool.storage.base import DerivedReads, ObjectInfo, PendingUpload, Storage, close_quietly


class FaultyStorage(DerivedReads):
    """Delegates to ``inner``; ``fail_*_after_bytes`` cut streams, ``corrupt_get`` maps each
    chunk that ``get`` yields (e.g. flip a bit, drop bytes)."""

    def __init__(
        self,
        inner: Storage,
        *,
        fail_put_after_bytes: int | None = None,
        fail_get_after_bytes: int | None = None,
        corrupt_get: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.inner = inner
        self.description = inner.description
        self.fail_put_after_bytes = fail_put_after_bytes
        self.fail_get_after_bytes = fail_get_after_bytes
        self.corrupt_get = corrupt_get

    def _cut(self, chunks: Iterable[bytes], limit: int, what: str) -> Iterator[bytes]:
        """Pass ``limit`` bytes through, then fail as a dropped connection would."""
        passed = 0
        try:
            for chunk in chunks:
                if passed + len(chunk) > limit:
                    if limit > passed:
                        yield chunk[: limit - passed]
                    raise StorageError(
                        f"{self.description}: injected fault: {what} cut after {limit} bytes"
                    )
                passed += len(chunk)
                yield chunk
        finally:
            close_quietly(chunks)

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        if self.fail_put_after_bytes is None:
            return self.inner.put(key, chunks)
        return self.inner.put(key, self._cut(chunks, self.fail_put_after_bytes, f"put {key}"))

    def put_bytes(self, key: str, data: bytes) -> None:
        if self.fail_put_after_bytes is not None and len(data) > self.fail_put_after_bytes:
            raise StorageError(f"{self.description}: injected fault: put {key} failed")
        self.inner.put_bytes(key, data)

    def put_if(self, key: str, data: bytes, *, etag: str | None) -> str | None:
        if self.fail_put_after_bytes is not None and len(data) > self.fail_put_after_bytes:
            raise StorageError(f"{self.description}: injected fault: put {key} failed")
        return self.inner.put_if(key, data, etag=etag)

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        data, etag = self.inner.get_tagged(key)
        return b"".join(self._faults(iter([data]), key)), etag

    def get(self, key: str) -> Iterator[bytes]:
        return self._faults(self.inner.get(key), key)

    def _faults(self, stream: Iterator[bytes], key: str) -> Iterator[bytes]:
        if self.corrupt_get is not None:
            stream = map(self.corrupt_get, stream)
        if self.fail_get_after_bytes is not None:
            stream = self._cut(stream, self.fail_get_after_bytes, f"get {key}")
        return stream

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def pending_uploads(self, prefix: str) -> Iterator[PendingUpload]:
        return self.inner.pending_uploads(prefix)

    def abort_upload(self, upload: PendingUpload) -> None:
        self.inner.abort_upload(upload)
