"""InTurns: a Storage wrapper that forces the worst interleaving of concurrent writers, so a
race that real storage loses only now and then is lost every time.

Every writer first reads (nobody has written yet), then waits at a barrier until all of them
are about to write; then writes happen one at a time, each writer's "turn" lasting from its
write to its next read (or to ``finish``). With slow writes this is what two containers firing
the same cron line see: each one's write lands after the other's read, and each read-back
sees only its own write. The barrier and the turn lock are threading or multiprocessing
primitives, so the same wrapper serves threads and processes."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from drtool.config import Config, StorageConfig
from drtool.services.context import Context
from drtool.services.lease import Lease
from drtool.storage import ObjectInfo, PendingUpload, Storage, open_storage


class InTurns:
    def __init__(self, inner: Storage, barrier: Any, turn: Any, armed: Any) -> None:
        self.inner = inner
        self.description = inner.description
        self._barrier = barrier
        self._turn = turn
        self._armed = armed  # an Event: while clear, the wrapper only delegates
        self._local = threading.local()

    def _before_write(self) -> None:
        if not self._armed.is_set():
            return
        if not getattr(self._local, "waited", False):
            self._local.waited = True
            self._barrier.wait()
        if not getattr(self._local, "holding", False):
            self._turn.acquire()
            self._local.holding = True

    def finish(self) -> None:
        """End this thread's turn (its last storage call is done)."""
        if getattr(self._local, "holding", False):
            self._local.holding = False
            self._turn.release()

    # -- writes -----------------------------------------------------------------------------

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        self._before_write()
        return self.inner.put(key, chunks)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._before_write()
        self.inner.put_bytes(key, data)

    def put_if(self, key: str, data: bytes, *, etag: str | None) -> str | None:
        self._before_write()
        return self.inner.put_if(key, data, etag=etag)

    def delete(self, key: str) -> None:
        self._before_write()
        self.inner.delete(key)

    # -- reads: each ends the reader's turn once it has read --------------------------------

    def get(self, key: str) -> Iterator[bytes]:
        try:
            return iter(list(self.inner.get(key)))
        finally:
            self.finish()

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.inner.get_bytes(key)
        finally:
            self.finish()

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        try:
            return self.inner.get_tagged(key)
        finally:
            self.finish()

    def stat(self, key: str) -> ObjectInfo:
        try:
            return self.inner.stat(key)
        finally:
            self.finish()

    def exists(self, key: str) -> bool:
        try:
            return self.inner.exists(key)
        finally:
            self.finish()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def pending_uploads(self, prefix: str) -> Iterator[PendingUpload]:
        return self.inner.pending_uploads(prefix)

    def abort_upload(self, upload: PendingUpload) -> None:
        self.inner.abort_upload(upload)


def contend(storage: InTurns, job: str, now: datetime) -> Lease | None:
    """One acquirer: the Lease if it won, else None. Always ends its turn."""
    lease = Lease(Context(Config(storage=StorageConfig()), storage, lambda: now), job)
    try:
        return lease if lease.acquire() is None else None
    finally:
        storage.finish()


def contend_in_process(
    config: StorageConfig, base_dir: str, barrier: Any, turn: Any, results: Any
) -> None:
    """A child process's acquirer (spawned, so module level): reports (won, holder)."""
    from pathlib import Path

    armed = threading.Event()
    armed.set()
    storage = InTurns(open_storage(config, Path(base_dir)), barrier, turn, armed)
    lease = contend(storage, "backup", datetime(2026, 11, 26, 2, 0, tzinfo=UTC))
    # A winner exits holding the lease (its renewer is a daemon thread).
    results.put(lease.holder if lease is not None else None)


def race_put_if(root: str, key: str, etag: str | None, start: Any, results: Any) -> None:
    """A child process that writes its pid to ``key`` conditionally once ``start`` is set."""
    import os
    from pathlib import Path

    from drtool.storage.local import LocalStorage

    storage = LocalStorage(Path(root))
    start.wait()
    results.put(storage.put_if(key, str(os.getpid()).encode(), etag=etag))
