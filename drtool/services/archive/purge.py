"""Purge policies: batched guarded deletes with no archive, made auditable by a purge record
(kind ``purge``: policy, table, cutoff, rows deleted, batches, times) stored like a batch.
A journal entry carries the running count, so a killed purge is recorded by the next run as
``interrupted`` with the rows counted so far (at most one batch more may have gone)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from drtool import __version__
from drtool.catalog.archive_records import JournalEntry, batch_prefix, clear_journal, write_journal
from drtool.catalog.catalog import MANIFEST_NAME, object_key
from drtool.catalog.manifest import PurgeManifest
from drtool.config import ArchivalPolicy
from drtool.ids import new_id
from drtool.pg.archive.session import ArchiveSession
from drtool.services.context import Context


@dataclass(frozen=True)
class PurgeOutcome:
    record_id: str
    deleted: int
    batches: int
    max_transaction_seconds: float
    stopped: str | None


def commit_purge_record(ctx: Context, entry: JournalEntry, *, interrupted: bool) -> PurgeManifest:
    manifest = PurgeManifest(
        id=entry.id,
        created_at=entry.created_at,
        finished_at=ctx.clock(),
        tool_version=__version__,
        database=entry.database,
        tables={entry.table: entry.deleted},
        policy=entry.policy,
        table=entry.table,
        cutoff=entry.cutoff.isoformat(),
        where=entry.where,
        deleted=entry.deleted,
        batches=entry.batches,
        interrupted=interrupted,
    )
    if not ctx.storage.exists(object_key(entry.prefix, MANIFEST_NAME)):
        with ctx.catalog.writer("purge", entry.id, entry.prefix) as record:
            record.commit(manifest, seal=None)  # no objects, nothing to seal with
    return manifest


def run_purge(
    ctx: Context,
    policy: ArchivalPolicy,
    session: ArchiveSession,
    *,
    run_at: datetime,
    cutoff: datetime,
    batch_size: int,
    max_rows: int | None,
    deadline: float | None,
    sleep_seconds: float,
) -> PurgeOutcome:
    now = ctx.clock()
    record_id = new_id(now)
    entry = JournalEntry(
        kind="purge-run",
        id=record_id,
        policy=policy.name,
        prefix=batch_prefix(policy.name, run_at, record_id),
        table=session.info.qualified,
        created_at=now,
        cutoff=cutoff,
        database=ctx.database().dbname,
        where={k: list(v) for k, v in policy.where.items()},
    )
    write_journal(ctx.storage, entry)
    deleted = batches = 0
    longest = 0.0
    stopped: str | None = None
    tick = ctx.progress(f"purge {policy.name}", None)  # a scheduled run's abort point
    while True:
        tick(0)
        if max_rows is not None and deleted >= max_rows:
            stopped = "max_rows"
            break
        if deadline is not None and time.monotonic() >= deadline:
            stopped = "max_duration"
            break
        if batches and sleep_seconds:
            time.sleep(sleep_seconds)
        limit = batch_size if max_rows is None else min(batch_size, max_rows - deleted)
        count, seconds = session.purge_batch(limit)
        longest = max(longest, seconds)
        if count == 0:
            break
        deleted += count
        batches += 1
        entry = entry.model_copy(update={"deleted": deleted, "batches": batches})
        write_journal(ctx.storage, entry)
        if count < limit:
            break
    commit_purge_record(ctx, entry, interrupted=False)
    clear_journal(ctx.storage, entry)
    return PurgeOutcome(record_id, deleted, batches, longest, stopped)
