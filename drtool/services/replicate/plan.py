"""What a replica lacks: the primary's complete items (backups, exports, settled archive
batches and purge records) and records (drills, verifications) that are not on the replica,
less the backups and exports the replica's own retention would remove at once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from drtool.catalog.archive_records import ARCHIVE_PREFIX, VOID_NAME, archive_entries
from drtool.catalog.catalog import KIND_PREFIX, MANIFEST_NAME, Catalog, segments_prefix
from drtool.catalog.manifest import Manifest
from drtool.catalog.records.audit import AUDIT_PREFIX, is_record_key
from drtool.catalog.records.drills import DRILLS_PREFIX
from drtool.catalog.records.verifications import VERIFICATIONS_PREFIX
from drtool.catalog.segments import read_segment, segment_keys
from drtool.config import RetentionConfig
from drtool.services.retention.plan import (
    BackupFacts,
    ExportFacts,
    plan_exports,
    plan_retention,
)
from drtool.storage.base import Storage

RECORD_PREFIXES = (DRILLS_PREFIX, VERIFICATIONS_PREFIX, AUDIT_PREFIX)
RECORD_KINDS = {DRILLS_PREFIX: "drill", VERIFICATIONS_PREFIX: "verification", AUDIT_PREFIX: "audit"}


@dataclass(frozen=True)
class ObjectToCopy:
    """One object to copy: ``size``/``sha256`` from the manifest, or None for a record or a
    void marker (then the source's own bytes are the reference)."""

    key: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ItemToCopy:
    """An item's objects, copied and verified first, then ``manifest`` (its key; None for a
    record or a void marker added to an item the replica has), bytes unchanged, last."""

    kind: str
    id: str
    objects: tuple[ObjectToCopy, ...]
    manifest: str | None = None

    @property
    def size(self) -> int:
        return sum(o.size or 0 for o in self.objects)


@dataclass(frozen=True)
class ReplicaPlan:
    items: list[ItemToCopy]
    # Items the replica lacks and does not get: id -> why (retention would remove them).
    not_copied: dict[str, str] = field(default_factory=dict)


def _objects(manifest: Manifest) -> tuple[ObjectToCopy, ...]:
    return tuple(ObjectToCopy(o.key, o.size, o.sha256) for o in manifest.objects)


def _keys(storage: Storage, prefix: str) -> dict[str, int]:
    return {info.key: info.size for info in storage.list(prefix)}


def _folders(keys: Iterable[str], depth: int) -> dict[str, str]:
    """Item id -> folder for manifest keys ``<depth segments>/<id>/manifest.json``."""
    out: dict[str, str] = {}
    for key in keys:
        parts = key.split("/")
        if len(parts) == depth + 2 and parts[-1] == MANIFEST_NAME:
            out[parts[-2]] = key.removesuffix(MANIFEST_NAME)
    return out


def plan_replica(
    primary: Storage,
    replica: Storage,
    retention: RetentionConfig,
    now: datetime,
    slot: str | None = None,
) -> ReplicaPlan:
    """Everything ``replica`` lacks, oldest first (so an interrupted run leaves the oldest
    items complete). Reads the replica's listings: an unreachable replica fails here."""
    items: list[ItemToCopy] = []
    not_copied: dict[str, str] = {}
    source = Catalog(primary)

    replica_backups = _folders(_keys(replica, KIND_PREFIX["backup"]), 1)
    backups = source.listing("backup").items
    target = Catalog(replica)
    union = {m.id: m for m in target.listing("backup").items} | {m.id: m for m in backups}
    facts = [BackupFacts(m.id, m.snapshot_at or m.created_at) for m in union.values()]
    plan = plan_retention(facts, retention, now, None)
    for m in backups:
        if m.id in replica_backups:
            continue
        if m.id not in plan.keep:
            not_copied[m.id] = plan.remove.get(m.id, "not kept by retention")
            continue
        items.append(ItemToCopy("backup", m.id, _objects(m), f"backups/{m.id}/{MANIFEST_NAME}"))

    primary_exports = _folders(_keys(primary, KIND_PREFIX["export"]), 2)
    replica_exports = _folders(_keys(replica, KIND_PREFIX["export"]), 2)
    exports = [m for m in source.listing("export").items if m.id in primary_exports]
    folders = replica_exports | primary_exports
    theirs = [m for m in target.listing("export").items if m.id in folders]
    union_exports = {m.id: m for m in theirs} | {m.id: m for m in exports}
    export_facts = [
        ExportFacts(m.id, folders[m.id].split("/")[1], m.snapshot_at or m.created_at)
        for m in union_exports.values()
    ]
    export_plan = plan_exports(export_facts, retention.exports_max_age, now)
    for m in exports:
        if m.id in replica_exports:
            continue
        if m.id not in export_plan.keep:
            not_copied[m.id] = export_plan.remove.get(m.id, "not kept by retention")
            continue
        manifest_key = primary_exports[m.id] + MANIFEST_NAME
        items.append(ItemToCopy("export", m.id, _objects(m), manifest_key))

    items += _archive_items(primary, replica)
    items += _record_items(primary, replica)
    if slot is not None:
        items += _segment_items(primary, replica, slot)
    items.sort(key=lambda item: (item.id, item.kind))
    return ReplicaPlan(items, not_copied)


def _archive_items(primary: Storage, replica: Storage) -> list[ItemToCopy]:
    """Settled batches and purge records the replica lacks (never pruned: no retention), and
    void markers the replica lacks, also of batches replicated before they were voided."""
    on_replica = _keys(replica, ARCHIVE_PREFIX)
    items: list[ItemToCopy] = []
    for entry in archive_entries(primary):
        if entry.pending:
            continue  # still in the journal: copied once it is settled
        manifest_key = entry.prefix + MANIFEST_NAME
        void_key = entry.prefix + VOID_NAME
        void: tuple[ObjectToCopy, ...] = ()
        if entry.void_reason is not None and void_key not in on_replica:
            void = (ObjectToCopy(void_key),)
        if manifest_key in on_replica:
            if void:
                items.append(ItemToCopy("void", entry.manifest.id, void))
            continue
        # A void marker goes before the manifest: the replica never shows a void batch as
        # restorable, even for a moment.
        objects = _objects(entry.manifest) + void
        items.append(ItemToCopy(entry.manifest.kind, entry.manifest.id, objects, manifest_key))
    return items


def _segment_items(primary: Storage, replica: Storage, slot: str) -> list[ItemToCopy]:
    """Change segments the replica lacks (complete ones: those with a manifest), so a
    point-in-time recovery works ``--from`` the replica too."""
    on_replica = _keys(replica, segments_prefix(slot))
    items: list[ItemToCopy] = []
    for item_id, key in segment_keys(primary, slot):
        if key in on_replica:
            continue
        manifest = read_segment(primary, key)
        if manifest is not None:
            items.append(ItemToCopy("segment", item_id, _objects(manifest), key))
    return items


def _record_items(primary: Storage, replica: Storage) -> list[ItemToCopy]:
    """Drill, verification and audit records (single documents, written once) the replica
    lacks; not the audit trail's head, which is the primary's rewritten state."""
    items: list[ItemToCopy] = []
    for prefix in RECORD_PREFIXES:
        on_replica = _keys(replica, prefix)
        for info in primary.list(prefix):
            if on_replica.get(info.key) == info.size:
                continue
            if prefix == AUDIT_PREFIX and not is_record_key(info.key):
                continue
            record_id = info.key.rsplit("/", 1)[-1].removesuffix(".json")
            items.append(ItemToCopy(RECORD_KINDS[prefix], record_id, (ObjectToCopy(info.key),)))
    return items
