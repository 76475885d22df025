"""Catalog use cases: list items newest first, show one item's manifest; both with the item's
last verification."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drtool.catalog.manifest import Kind, Manifest
from drtool.catalog.records import VerificationRecord, last_verification, last_verifications
from drtool.errors import UsageError
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


@dataclass(frozen=True)
class ListResult:
    items: list[ListItem]
    unreadable: list[str]


@dataclass(frozen=True)
class ShowResult:
    manifest: Manifest
    last_verification: VerificationRecord | None = None


def list_items(ctx: Context, kind: Kind | None = None, limit: int | None = None) -> ListResult:
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
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
    return ListResult(items, [key for key, _ in listing.unreadable])


def show_item(ctx: Context, item_id: str) -> ShowResult:
    find = ctx.catalog.resolve if item_id == "latest" else ctx.catalog.find
    manifest = find(item_id)
    return ShowResult(manifest, last_verification(ctx.storage, manifest.id))
