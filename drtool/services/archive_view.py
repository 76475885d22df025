"""``archive list``: archived batches and purge records, newest first, with their state
(archived, void, pending = a journal entry still refers to it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drtool.catalog.archive_records import archive_entries
from drtool.errors import UsageError
from drtool.services.archive_restore import POLICY_NAME
from drtool.services.context import Context


@dataclass(frozen=True)
class ArchiveItem:
    policy: str
    id: str
    kind: str  # archive | purge
    status: str  # archived | void | pending
    table: str
    rows: int
    pk_first: list[str] | None
    pk_last: list[str] | None
    time_min: str | None
    time_max: str | None
    bytes: int
    created_at: datetime
    cutoff: str | None
    key: str
    void_reason: str | None = None
    interrupted: bool | None = None  # purge records: the run was killed; rows is a lower bound


@dataclass(frozen=True)
class ArchiveListResult:
    items: list[ArchiveItem]


def list_archive(ctx: Context, policy: str | None = None) -> ArchiveListResult:
    if policy is not None and not POLICY_NAME.match(policy):
        raise UsageError(f"--policy {policy!r} is not a policy name")
    items: list[ArchiveItem] = []
    for entry in archive_entries(ctx.storage, policy):
        m = entry.manifest
        extra: dict[str, Any] = dict(m.model_extra or {})
        rows = extra.get("rows") if m.kind == "archive" else extra.get("deleted")
        items.append(
            ArchiveItem(
                policy=entry.policy,
                id=m.id,
                kind=m.kind,
                status=entry.status,
                table=str(extra.get("table", "")),
                rows=int(rows or 0),
                pk_first=extra.get("pk_first"),
                pk_last=extra.get("pk_last"),
                time_min=extra.get("time_min"),
                time_max=extra.get("time_max"),
                bytes=m.size,
                created_at=m.created_at,
                cutoff=extra.get("cutoff"),
                key=entry.prefix,
                void_reason=entry.void_reason,
                interrupted=extra.get("interrupted") if m.kind == "purge" else None,
            )
        )
    return ArchiveListResult(items)
