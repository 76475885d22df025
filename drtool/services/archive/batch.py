"""One archive batch, in the order that makes a crash at any point safe: journal entry ->
encrypted object -> read back and verified -> sealed manifest -> guarded delete (committed
only if the deleted rows are exactly the archived ones, by count and rows digest, else the
batch is voided) -> journal entry cleared."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drtool import __version__
from drtool.catalog.archive_records import (
    ROWS_FILE,
    ROWS_OBJECT,
    JournalEntry,
    batch_prefix,
    clear_journal,
    write_journal,
    write_void,
)
from drtool.catalog.manifest import ArchiveManifest
from drtool.catalog.writer import ItemWriter
from drtool.config import ArchivalPolicy
from drtool.crypto.keys import Recipient
from drtool.ids import new_id
from drtool.log import get_logger
from drtool.pg.archive.session import ArchiveSession, RowBatch
from drtool.pg.archive.table import TableInfo
from drtool.pg.conn import COPY_SETTINGS
from drtool.pipeline.stages import Digest, hash_tap
from drtool.pipeline.store import StoredObject, check_digest
from drtool.services.archive.codec import copy_header, encode_batch, rows_sha256
from drtool.services.context import Context
from drtool.services.keys import compression_field, encryption_field
from drtool.storage.base import Storage

UPDATED_MEANWHILE = "rows changed or went away between the copy and the delete"

log = get_logger("archive")


@dataclass(frozen=True)
class BatchOutcome:
    id: str
    rows: int
    deleted: int
    bytes: int
    void: bool
    transaction_seconds: float


def verify_stored(storage: Storage, obj: StoredObject) -> None:
    """Read the stored object back: its size and SHA-256 must be what was written (stored
    bytes only, so the archival host needs no decryption key)."""
    digest = Digest()
    for _chunk in hash_tap(storage.get(obj.key), digest):
        pass
    check_digest(
        digest, size=obj.size, sha256=obj.sha256, what=f"{obj.key} (read back)", obj=obj.name
    )


def batch_manifest(
    ctx: Context,
    policy: ArchivalPolicy,
    info: TableInfo,
    entry: JournalEntry,
    batch: RowBatch,
    rows_sha256: str,
    item: ItemWriter,
    recipients: list[Recipient],
) -> ArchiveManifest:
    return ArchiveManifest(
        id=entry.id,
        created_at=entry.created_at,
        finished_at=ctx.clock(),
        tool_version=__version__,
        database=ctx.database().dbname,
        objects=item.entries(),
        compression=compression_field(ctx.config),
        encryption=encryption_field(recipients),
        tables={info.qualified: len(batch.lines)},
        policy=policy.name,
        table=info.qualified,
        columns=list(info.columns),
        pk=list(info.pk),
        time_column=policy.time_column,
        cutoff=entry.cutoff.isoformat(),
        where={k: list(v) for k, v in policy.where.items()},
        pk_first=list(batch.keys[0]),
        pk_last=list(batch.keys[-1]),
        time_min=batch.time_min.isoformat() if batch.time_min else None,
        time_max=batch.time_max.isoformat() if batch.time_max else None,
        rows=len(batch.lines),
        rows_sha256=rows_sha256,
        rows_digest=batch.digest,
        encoding="postgresql-copy-text",
        copy_settings=dict(COPY_SETTINGS),
    )


def archive_batch(
    ctx: Context,
    policy: ArchivalPolicy,
    session: ArchiveSession,
    batch: RowBatch,
    *,
    run_at: datetime,
    cutoff: datetime,
    recipients: list[Recipient],
) -> BatchOutcome:
    info = session.info
    now = ctx.clock()
    batch_id = new_id(now)
    prefix = batch_prefix(policy.name, run_at, batch_id)
    header = copy_header(info.schema, info.name, info.columns)
    body = encode_batch(header, batch.lines)
    sha = rows_sha256(body, header)
    entry = JournalEntry(
        kind="archive-batch",
        id=batch_id,
        policy=policy.name,
        prefix=prefix,
        table=info.qualified,
        created_at=now,
        cutoff=cutoff,
        keys=[list(k) for k in batch.keys],
        rows=len(batch.lines),
        rows_sha256=sha,
        rows_digest=batch.digest,
    )
    write_journal(ctx.storage, entry)
    with ctx.catalog.writer("archive", batch_id, prefix) as item:
        obj = item.store(
            ROWS_OBJECT,
            ROWS_FILE,
            [body],
            recipients=recipients,
            level=ctx.config.compression.level,
            threads=ctx.config.compression.threads,
        )
        del body
        verify_stored(ctx.storage, obj)
        manifest = batch_manifest(ctx, policy, info, entry, batch, sha, item, recipients)
        item.commit(manifest, seal=ROWS_OBJECT)
    outcome = session.delete_batch(batch.keys, len(batch.lines), batch.digest, batch.tids)
    if not outcome.committed:
        log.warning(
            "archive policy %s: batch %s not deleted (the delete matched %d rows of %d, or "
            "their content differed): %s; they stay and are archived again later",
            policy.name,
            batch_id,
            outcome.deleted,
            len(batch.lines),
            UPDATED_MEANWHILE,
        )
        write_void(ctx.storage, prefix, UPDATED_MEANWHILE, ctx.clock())
    clear_journal(ctx.storage, entry)
    return BatchOutcome(
        id=batch_id,
        rows=len(batch.lines),
        deleted=len(batch.lines) if outcome.committed else 0,
        bytes=obj.size,
        void=not outcome.committed,
        transaction_seconds=outcome.seconds,
    )
