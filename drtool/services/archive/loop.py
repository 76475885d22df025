"""The batch loop of an archive policy: batches read ahead on their own connection, and
archived by two workers, each with its own connection for its guarded deletes, so one batch's
compression and upload overlap another's delete and the next one's read. Memory is bounded
by the batches in flight: two being archived, one read ahead, one being read."""

from __future__ import annotations

import queue
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from datetime import datetime

from drtool.config import ArchivalPolicy
from drtool.crypto.keys import Recipient
from drtool.log import get_logger
from drtool.pg.archive.session import ArchiveSession, RowBatch
from drtool.services.archive.batch import BatchOutcome, archive_batch
from drtool.services.archive.prefetch import Prefetcher
from drtool.services.context import Context

WORKERS = 2

log = get_logger("archive")

OpenSession = Callable[[], AbstractContextManager[ArchiveSession]]


@dataclass
class LoopTotals:
    processed: int = 0  # rows in batches, void ones included
    archived: int = 0
    deleted: int = 0
    batches: int = 0
    bytes: int = 0
    voided: int = 0
    longest: float = 0.0
    stopped: str | None = None

    def add(self, outcome: BatchOutcome) -> None:
        self.batches += 1
        self.archived += 0 if outcome.void else outcome.rows
        self.deleted += outcome.deleted
        self.bytes += outcome.bytes
        self.voided += int(outcome.void)
        self.longest = max(self.longest, outcome.transaction_seconds)


def archive_loop(
    ctx: Context,
    policy: ArchivalPolicy,
    session: ArchiveSession,
    open_session: OpenSession,
    *,
    batch_size: int,
    max_rows: int | None,
    sleep_seconds: float,
    deadline: float | None,
    run_at: datetime,
    cutoff: datetime,
    recipients: list[Recipient],
) -> LoopTotals:
    totals = LoopTotals()
    # The progress callback is where a scheduled run's timeout or shutdown aborts it: called
    # between batches, so an abort lets the batches in flight finish and starts no other.
    tick = ctx.progress(f"archive {policy.name}", None)
    sessions: queue.Queue[ArchiveSession] = queue.Queue()
    sessions.put(session)

    def run(batch: RowBatch) -> BatchOutcome:
        worker = sessions.get()
        try:
            return archive_batch(
                ctx, policy, worker, batch, run_at=run_at, cutoff=cutoff, recipients=recipients
            )
        finally:
            sessions.put(worker)

    def settle(future: Future[BatchOutcome]) -> None:
        outcome = future.result()
        totals.add(outcome)
        tick(outcome.bytes)
        log.debug("archive %s: batch %s, %d rows", policy.name, outcome.id, outcome.rows)

    with ExitStack() as stack:
        for _ in range(WORKERS - 1):
            sessions.put(stack.enter_context(open_session()))
        reader = stack.enter_context(Prefetcher(open_session, batch_size, max_rows))
        pool = stack.enter_context(ThreadPoolExecutor(WORKERS, thread_name_prefix="drtool-archive"))
        in_flight: deque[Future[BatchOutcome]] = deque()
        try:
            while True:
                tick(0)
                if max_rows is not None and totals.processed >= max_rows:
                    totals.stopped = "max_rows"
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    totals.stopped = "max_duration"
                    break
                if totals.processed and sleep_seconds:
                    time.sleep(sleep_seconds)
                batch = reader.next()
                if batch is None:
                    break
                while len(in_flight) >= WORKERS:
                    settle(in_flight.popleft())
                totals.processed += len(batch.keys)
                in_flight.append(pool.submit(run, batch))
            while in_flight:
                settle(in_flight.popleft())
        finally:
            # On an error, let the batches in flight finish (each one is whole or journaled).
            for future in in_flight:
                if future.exception() is None:
                    totals.add(future.result())
    return totals
