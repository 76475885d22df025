"""Catalog use cases: list items newest first, show one item's manifest; both with the item's
last verification. Drill records (``drills/<id>.json``, not manifests) are listed and shown
alongside."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drtool.catalog.manifest import Kind, Manifest
from drtool.catalog.records.drills import DrillRecord, drill_records, read_drill_record
from drtool.catalog.records.verifications import (
    VerificationRecord,
    last_verification,
    last_verifications,
)
from drtool.errors import UsageError
from drtool.ids import is_valid_id
from drtool.services.context import Context


@dataclass(frozen=True)
class ListItem:
    id: str
    kind: str
    created_at: datetime
    size: int
    label: str | None
    last_verified_at: datetime | None
    last_verify_ok: bool | None
    # drills only: the verdict, the backup rehearsed, the measured objectives
    verdict: str | None = None
    backup_id: str | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None


@dataclass(frozen=True)
class ListResult:
    items: list[ListItem]
    unreadable: list[str]


@dataclass(frozen=True)
class ShowResult:
    manifest: Manifest
    last_verification: VerificationRecord | None = None


@dataclass(frozen=True)
class DrillShowResult:
    drill: DrillRecord


def _drill_item(record: DrillRecord) -> ListItem:
    return ListItem(
        id=record.id,
        kind="drill",
        created_at=record.created_at,
        size=0,
        label=None,
        last_verified_at=None,
        last_verify_ok=None,
        verdict=record.verdict,
        backup_id=record.backup_id,
        rto_seconds=record.rto_seconds,
        rpo_seconds=record.rpo_seconds,
    )


def list_items(ctx: Context, kind: Kind | None = None, limit: int | None = None) -> ListResult:
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    drills = [] if kind not in (None, "drill") else drill_records(ctx.storage, limit)
    if kind == "drill":
        return ListResult([_drill_item(d) for d in drills], [])
    listing = ctx.catalog.listing(kind)
    manifests = listing.items[:limit] if limit else listing.items
    verified = last_verifications(ctx.storage, [m.id for m in manifests])
    items = [
        ListItem(
            id=m.id,
            kind=m.kind,
            created_at=m.created_at,
            size=m.size,
            label=m.label,
            last_verified_at=record.at if (record := verified[m.id]) else None,
            last_verify_ok=record.ok if record else None,
        )
        for m in manifests
    ]
    items += [_drill_item(d) for d in drills]
    items.sort(key=lambda item: item.id, reverse=True)
    return ListResult(items[:limit] if limit else items, [key for key, _ in listing.unreadable])


def show_item(ctx: Context, item_id: str) -> ShowResult | DrillShowResult:
    if item_id == "latest":
        manifest = ctx.catalog.resolve(item_id)
        return ShowResult(manifest, last_verification(ctx.storage, manifest.id))
    try:
        manifest = ctx.catalog.find(item_id)
    except UsageError:
        drill = read_drill_record(ctx.storage, item_id) if is_valid_id(item_id) else None
        if drill is None:
            raise
        return DrillShowResult(drill)
    return ShowResult(manifest, last_verification(ctx.storage, manifest.id))
