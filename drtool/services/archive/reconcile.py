"""Crash recovery: settle every journal entry a killed run left, before a run starts new
batches (under the policy's advisory lock).

archive batch, manifest absent  -> nothing was deleted: remove leftovers, drop the entry
archive batch, manifest present -> stored copy verified, then the rows with the batch's keys:
    none left                    -> the guarded delete had committed: done
    all left and equal           -> do the guarded delete now
    anything else                -> void the batch (never restored); rows stay for a later batch
purge run                        -> record it as an interrupted purge (count so far)"""

from __future__ import annotations

from dataclasses import dataclass

from drtool.catalog.archive_records import (
    ROWS_OBJECT,
    VOID_NAME,
    JournalEntry,
    clear_journal,
    write_void,
)
from drtool.catalog.catalog import MANIFEST_NAME, object_key
from drtool.catalog.manifest import parse_manifest
from drtool.catalog.records.document import read_record
from drtool.errors import IntegrityError, NotFoundInStorage, StorageError
from drtool.log import get_logger
from drtool.pg.archive.session import ArchiveSession
from drtool.services.archive.batch import UPDATED_MEANWHILE, verify_stored
from drtool.services.archive.purge import commit_purge_record
from drtool.services.context import Context

log = get_logger("archive")


@dataclass(frozen=True)
class ReconcileStats:
    entries: int = 0
    deleted: int = 0  # rows deleted now for batches stored before the crash
    voided: int = 0
    dropped: int = 0  # batches that never reached their manifest


def _remove_folder(ctx: Context, prefix: str) -> None:
    """Best effort: a batch without a manifest is never listed nor restored, so what cannot be
    removed (the backup writer may not delete archive batches, deploy/iam/) is left in place."""
    for info in list(ctx.storage.list(prefix)):
        try:
            ctx.storage.delete(info.key)
        except NotFoundInStorage:
            continue
        except StorageError as exc:
            log.warning("could not remove %s (left in place): %s", info.key, exc.message)


def _settle_batch(ctx: Context, entry: JournalEntry, session: ArchiveSession) -> tuple[int, int]:
    """(rows deleted now, 1 if voided) for one archive-batch entry."""
    storage = ctx.storage
    manifest_key = object_key(entry.prefix, MANIFEST_NAME)
    manifest = read_record(storage, manifest_key, parse_manifest)
    if manifest is None:
        _remove_folder(ctx, entry.prefix)
        log.info("archive %s: batch %s never completed; removed", entry.policy, entry.id)
        return 0, 0
    if storage.exists(object_key(entry.prefix, VOID_NAME)):
        return 0, 0
    keys = [tuple(k) for k in entry.keys]
    present, digest = session.present(keys)
    try:
        verify_stored(storage, manifest.object(ROWS_OBJECT).stored())
    except IntegrityError as exc:
        if present == entry.rows:
            write_void(
                storage, entry.prefix, f"stored copy failed verification: {exc}", ctx.clock()
            )
            return 0, 1
        raise
    if not present:
        return 0, 0
    if present == entry.rows and digest == entry.rows_digest:
        outcome = session.delete_batch(keys, entry.rows, digest)
        if outcome.committed:
            log.info("archive %s: batch %s deleted on reconciliation", entry.policy, entry.id)
            return entry.rows, 0
    write_void(storage, entry.prefix, UPDATED_MEANWHILE, ctx.clock())
    log.warning("archive %s: batch %s voided: %s", entry.policy, entry.id, UPDATED_MEANWHILE)
    return 0, 1


def reconcile(ctx: Context, entries: list[JournalEntry], session: ArchiveSession) -> ReconcileStats:
    deleted = voided = dropped = 0
    for entry in entries:
        if entry.kind == "purge-run":
            commit_purge_record(ctx, entry, interrupted=True)
        else:
            removed, void = _settle_batch(ctx, entry, session)
            deleted += removed
            voided += void
            if not storage_has_manifest(ctx, entry):
                dropped += 1
        clear_journal(ctx.storage, entry)
    return ReconcileStats(len(entries), deleted, voided, dropped)


def storage_has_manifest(ctx: Context, entry: JournalEntry) -> bool:
    return ctx.storage.exists(object_key(entry.prefix, MANIFEST_NAME))
