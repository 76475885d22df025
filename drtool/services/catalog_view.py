"""Catalog use cases: list items newest first, show one item's manifest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drtool.catalog.manifest import Kind, Manifest
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


def list_items(ctx: Context, kind: Kind | None = None, limit: int | None = None) -> ListResult:
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    listing = ctx.catalog.listing(kind)
    manifests = listing.items[:limit] if limit else listing.items
    items = [
        ListItem(
            id=m.id,
            kind=m.kind,
            created_at=m.created_at,
            size=m.size,
            label=m.label,
            last_verified_at=None,
            last_verify_ok=None,
        )
        for m in manifests
    ]
    return ListResult(items, [key for key, _ in listing.unreadable])


def show_item(ctx: Context, item_id: str) -> ShowResult:
    if item_id == "latest":
        return ShowResult(ctx.catalog.resolve("latest"))
    return ShowResult(ctx.catalog.find(item_id))
