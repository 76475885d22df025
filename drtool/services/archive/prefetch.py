"""Read-ahead for archive runs: the next batch is read (keys, row versions, COPY) on a second
connection while the current one is compressed, encrypted, stored, verified and deleted, so
the database and the storage work at the same time. At most two batches are in memory: the
one being archived and the one read ahead."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType

from drtool.pg.archive.session import ArchiveSession, RowBatch

PUT_POLL_S = 0.2
JOIN_TIMEOUT_S = 30.0

_Item = RowBatch | BaseException | None


class Prefetcher:
    """Batches in primary-key order, ``batch_size`` rows each, ``max_rows`` in all (if set);
    ``next()`` returns None at the end and re-raises a reader error."""

    def __init__(
        self,
        open_session: Callable[[], AbstractContextManager[ArchiveSession]],
        batch_size: int,
        max_rows: int | None,
    ) -> None:
        self._open = open_session
        self._batch_size = batch_size
        self._max_rows = max_rows
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drtool-archive-read", daemon=True)

    def __enter__(self) -> Prefetcher:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        while True:  # unblock a reader waiting to hand over a batch
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(JOIN_TIMEOUT_S)

    def next(self) -> RowBatch | None:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def _put(self, item: _Item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=PUT_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            with self._open() as session:
                after = None
                read = 0
                while not self._stop.is_set():
                    limit = self._batch_size
                    if self._max_rows is not None:
                        limit = min(limit, self._max_rows - read)
                    batch = session.read_batch(after, limit) if limit > 0 else None
                    if batch is None:
                        break
                    if not self._put(batch):
                        return
                    if len(batch.keys) < limit:
                        break
                    after = batch.keys[-1]
                    read += len(batch.keys)
            self._put(None)
        except BaseException as exc:
            self._put(exc)
