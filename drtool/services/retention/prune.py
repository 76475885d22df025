"""The ``prune`` use case: apply the retention plan to backups and exports, and clean up what
killed runs left behind (unfinished uploads, item folders without a manifest); on the primary
storage, then the same way on each replica, judged by what that replica holds."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from drtool.catalog.catalog import KIND_PREFIX, MANIFEST_NAME, segment_prefix, segments_prefix
from drtool.catalog.manifest import Manifest
from drtool.catalog.records.restores import RESTORES_PREFIX
from drtool.catalog.records.stream_state import read_state
from drtool.catalog.records.verifications import VERIFICATIONS_PREFIX, last_verifications
from drtool.catalog.segments import all_segments
from drtool.errors import EXIT_FAILED, EXIT_OK, DrtoolError, NotFoundInStorage
from drtool.log import get_logger
from drtool.services.context import Context, with_source
from drtool.services.retention.plan import (
    BackupFacts,
    ExportFacts,
    RetentionPlan,
    plan_exports,
    plan_retention,
)
from drtool.services.retention.segments import plan_segments
from drtool.storage.base import ObjectInfo, Storage

log = get_logger("prune")


@dataclass(frozen=True)
class PruneEntry:
    """One item and why it goes or stays."""

    id: str
    reason: str
    kind: str = "backup"


@dataclass(frozen=True)
class AbandonedEntry:
    """One leftover cleaned up (or that would be, with --dry-run)."""

    what: str
    reason: str


@dataclass(frozen=True)
class ReplicaPrune:
    """Retention applied on one replica (storage.replicas): the same fields as the primary's,
    or ``ok`` false with the ``error`` that stopped it there (the others still ran)."""

    name: str
    ok: bool
    removed: list[PruneEntry] = field(default_factory=list)
    kept: list[PruneEntry] = field(default_factory=list)
    abandoned_removed: int = 0
    abandoned: list[AbandonedEntry] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class PruneResult:
    """``removed`` and ``kept`` list every complete item of the primary storage;
    ``abandoned_removed`` counts leftovers (unfinished uploads, partial items) cleaned up;
    ``dry_run``: nothing was deleted; ``replicas``: the same, per replica."""

    removed: list[PruneEntry]
    kept: list[PruneEntry]
    abandoned_removed: int
    dry_run: bool
    abandoned: list[AbandonedEntry] = field(default_factory=list)
    replicas: list[ReplicaPrune] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        # What retention keeps is said in ``kept``, never a failure; a replica that could not
        # be pruned is (exit 1, naming it), after the primary and the other replicas were.
        return EXIT_FAILED if self.failed_replicas() else EXIT_OK

    def failed_replicas(self) -> list[ReplicaPrune]:
        return [replica for replica in self.replicas if not replica.ok]

    def item_id(self) -> str | None:
        return None

    def summary(self) -> str | None:
        failed = self.failed_replicas()
        if not failed:
            return None
        return "; ".join(f"replica {r.name} not pruned: {r.error}" for r in failed)

    def stats(self) -> dict[str, float]:
        return {
            "removed": len(self.removed),
            "kept": len(self.kept),
            "abandoned_removed": self.abandoned_removed,
            "replicas_removed": sum(len(r.removed) for r in self.replicas),
            "replicas_failed": len(self.failed_replicas()),
        }


def _folder(manifest_key: str) -> str:
    return manifest_key.rsplit("/", 1)[0] + "/"


def _newest_verified(storage: Storage, backups: list[Manifest]) -> str | None:
    records = last_verifications(storage, [m.id for m in backups])
    verified = [item_id for item_id, record in records.items() if record and record.ok]
    return max(verified) if verified else None


def _lock(storage: Storage, keys: list[str], now: datetime) -> datetime | None:
    """The latest Object Lock retain-until date in the future among ``keys``, if any."""
    latest: datetime | None = None
    for key in keys:
        try:
            until = storage.stat(key).locked_until
        except NotFoundInStorage:
            continue
        if until is not None and until > now and (latest is None or until > latest):
            latest = until
    return latest


def _delete_item(storage: Storage, folder: str, item_id: str, records: bool) -> None:
    # The manifest goes first: an interrupted prune then leaves a partial item (no manifest),
    # which nothing treats as complete and the next prune removes as abandoned.
    storage.delete(folder + MANIFEST_NAME)
    for info in list(storage.list(folder)):
        storage.delete(info.key)
    if records:
        for prefix in (VERIFICATIONS_PREFIX, RESTORES_PREFIX):
            for info in list(storage.list(f"{prefix}{item_id}/")):
                storage.delete(info.key)


def _apply(
    ctx: Context,
    plan: RetentionPlan,
    folders: dict[str, str],
    kind: str,
    now: datetime,
    dry_run: bool,
) -> tuple[list[PruneEntry], list[PruneEntry]]:
    removed: list[PruneEntry] = []
    kept = [PruneEntry(i, "; ".join(reasons), kind) for i, reasons in plan.keep.items()]
    for item_id, reason in plan.remove.items():
        folder = folders[item_id]
        keys = [info.key for info in ctx.storage.list(folder)]
        locked = _lock(ctx.storage, keys, now)
        if locked is not None:
            kept.append(PruneEntry(item_id, f"object lock until {locked.isoformat()}", kind))
            continue
        if not dry_run:
            _delete_item(ctx.storage, folder, item_id, records=kind == "backup")
            log.info("removed %s %s from %s: %s", kind, item_id, ctx.where, reason)
        removed.append(PruneEntry(item_id, reason, kind))
    kept.sort(key=lambda e: e.id, reverse=True)
    return removed, kept


def _item_folders(storage: Storage, kind: str) -> dict[str, list[ObjectInfo]]:
    """Objects grouped by item folder: ``backups/<id>/`` or ``exports/<user>/<id>/``."""
    depth = 2 if kind == "backup" else 3
    groups: dict[str, list[ObjectInfo]] = defaultdict(list)
    for info in storage.list(KIND_PREFIX[kind]):
        parts = info.key.split("/")
        if len(parts) > depth:
            groups["/".join(parts[:depth]) + "/"].append(info)
    return groups


def _segment_folders(storage: Storage, slot: str) -> dict[str, list[ObjectInfo]]:
    """Objects grouped by change-segment folder: ``streams/<slot>/segments/<id>/``."""
    groups: dict[str, list[ObjectInfo]] = defaultdict(list)
    for info in storage.list(segments_prefix(slot)):
        parts = info.key.split("/")
        if len(parts) > 4:
            groups["/".join(parts[:4]) + "/"].append(info)
    return groups


def _clean_abandoned(ctx: Context, now: datetime, dry_run: bool) -> list[AbandonedEntry]:
    grace = ctx.config.retention.abandoned_after
    found: list[AbandonedEntry] = []
    for upload in list(ctx.storage.pending_uploads("")):
        if now - upload.started < grace:
            continue
        if not dry_run:
            ctx.storage.abort_upload(upload)
        found.append(
            AbandonedEntry(
                f"unfinished upload of {upload.key}",
                f"started {upload.started.isoformat()}, older than abandoned_after",
            )
        )
    folders = {
        **_item_folders(ctx.storage, "backup"),
        **_item_folders(ctx.storage, "export"),
        **_segment_folders(ctx.storage, ctx.config.stream.slot),
    }
    for folder, objects in folders.items():
        if any(info.key == folder + MANIFEST_NAME for info in objects):
            continue
        newest = max(info.modified for info in objects)
        if now - newest < grace:
            continue  # maybe a run still writing it
        if _lock(ctx.storage, [info.key for info in objects], now) is not None:
            log.warning("partial item %s is under Object Lock; left in place", folder)
            continue
        if not dry_run:
            for info in objects:
                ctx.storage.delete(info.key)
        found.append(
            AbandonedEntry(
                f"partial item {folder} ({len(objects)} object(s), no manifest)",
                f"last written {newest.isoformat()}, older than abandoned_after",
            )
        )
    return found


def _prune_segments(
    ctx: Context, kept: list[Manifest], now: datetime, dry_run: bool
) -> tuple[list[PruneEntry], list[PruneEntry]]:
    """Change segments no kept backup needs (services/retention/segments.py), oldest first,
    each manifest before its object; nothing under Object Lock."""
    slot = ctx.config.stream.slot
    segments = all_segments(ctx.storage, slot)
    if not segments:
        return [], []
    state = read_state(ctx.storage, slot)
    remove, keep = plan_segments(segments, kept, state.generation if state else None)
    removed: list[PruneEntry] = []
    # One line for the kept segments (there are thousands): the oldest, and how many.
    kept_entries = [
        PruneEntry(keep[0].segment.id, f"oldest of {len(keep)} kept: {keep[0].reason}", "segment")
    ][: len(keep)]
    for verdict in sorted(remove, key=lambda v: v.segment.id):
        seg = verdict.segment
        folder = segment_prefix(slot, seg.id)
        locked = _lock(ctx.storage, [info.key for info in ctx.storage.list(folder)], now)
        if locked is not None:
            kept_entries.append(
                PruneEntry(seg.id, f"object lock until {locked.isoformat()}", "segment")
            )
            continue
        if not dry_run:
            _delete_item(ctx.storage, folder, seg.id, records=False)
        removed.append(PruneEntry(seg.id, verdict.reason, "segment"))
    if removed:
        log.info(
            "%s %d change segment(s) from %s",
            "would remove" if dry_run else "removed",
            len(removed),
            ctx.where,
        )
    return removed, kept_entries


def _export_facts(ctx: Context) -> tuple[list[ExportFacts], dict[str, str]]:
    """Complete exports and their folders; the user id is the folder above the item's."""
    where: dict[str, str] = {}
    for info in ctx.storage.list(KIND_PREFIX["export"]):
        parts = info.key.split("/")
        if len(parts) == 4 and parts[3] == MANIFEST_NAME:
            where[parts[2]] = _folder(info.key)
    facts: list[ExportFacts] = []
    folders: dict[str, str] = {}
    for manifest in ctx.catalog.listing("export").items:
        folder = where.get(manifest.id)
        if folder is None:
            continue
        user_id = folder.split("/")[1]
        facts.append(ExportFacts(manifest.id, user_id, manifest.snapshot_at or manifest.created_at))
        folders[manifest.id] = folder
    return facts, folders


def run_prune(ctx: Context, *, dry_run: bool = False) -> PruneResult:
    """Plan retention, remove what the plan drops (unless ``dry_run``), clean leftovers: on
    the primary storage, then on each replica with the same rules, each judged by its own
    items (never its newest complete nor its newest verified backup, nothing under Object
    Lock). A replica that fails is reported in the result and does not stop the others."""
    result = _prune_storage(ctx, dry_run)
    replicas: list[ReplicaPrune] = []
    for replica in ctx.config.storage.replicas if ctx.source is None else []:
        try:
            done = _prune_storage(with_source(ctx, replica.name), dry_run)
        except DrtoolError as exc:
            log.warning("prune on replica %s failed: %s", replica.name, exc.message)
            replicas.append(ReplicaPrune(replica.name, False, error=exc.message))
            continue
        replicas.append(
            ReplicaPrune(
                name=replica.name,
                ok=True,
                removed=done.removed,
                kept=done.kept,
                abandoned_removed=done.abandoned_removed,
                abandoned=done.abandoned,
            )
        )
    return PruneResult(
        removed=result.removed,
        kept=result.kept,
        abandoned_removed=result.abandoned_removed,
        dry_run=dry_run,
        abandoned=result.abandoned,
        replicas=replicas,
    )


def _prune_storage(ctx: Context, dry_run: bool) -> PruneResult:
    """Retention on the one storage ``ctx`` works on."""
    now = ctx.clock()
    policy = ctx.config.retention
    backups = ctx.catalog.listing("backup").items
    facts = [BackupFacts(m.id, m.snapshot_at or m.created_at) for m in backups]
    plan = plan_retention(facts, policy, now, _newest_verified(ctx.storage, backups))
    folders = {m.id: f"{KIND_PREFIX['backup']}{m.id}/" for m in backups}
    removed, kept = _apply(ctx, plan, folders, "backup", now, dry_run)

    exports, export_folders = _export_facts(ctx)
    export_plan = plan_exports(exports, policy.exports_max_age, now)
    gone, stay = _apply(ctx, export_plan, export_folders, "export", now, dry_run)

    kept_backups = [m for m in backups if m.id not in {e.id for e in removed}]
    seg_removed, seg_kept = _prune_segments(ctx, kept_backups, now, dry_run)

    abandoned = _clean_abandoned(ctx, now, dry_run)
    return PruneResult(
        removed=removed + gone + seg_removed,
        kept=kept + stay + seg_kept,
        abandoned_removed=len(abandoned),
        dry_run=dry_run,
        abandoned=abandoned,
    )
