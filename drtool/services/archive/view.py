"""``archive list``: archived batches and purge records, newest first, with their state
(archived, void, pending = a journal entry still refers to it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drtool.catalog.archive_records import archive_entries
from drtool.catalog.manifest import ArchiveManifest, PurgeManifest
from drtool.errors import UsageError
from drtool.services.archive.restore import POLICY_NAME
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
        if not isinstance(m, ArchiveManifest | PurgeManifest):
            continue  # no other kind is stored under archive/
        batch = m if isinstance(m, ArchiveManifest) else None
        purge = m if isinstance(m, PurgeManifest) else None
        items.append(
            ArchiveItem(
                policy=entry.policy,
                id=m.id,
                kind=m.kind,
                status=entry.status,
                table=m.table,
                rows=batch.rows if batch else purge.deleted if purge else 0,
                pk_first=batch.pk_first if batch else None,
                pk_last=batch.pk_last if batch else None,
                time_min=batch.time_min if batch else None,
                time_max=batch.time_max if batch else None,
                bytes=m.size,
                created_at=m.created_at,
                cutoff=m.cutoff,
                key=entry.prefix,
                void_reason=entry.void_reason,
                interrupted=purge.interrupted if purge else None,
            )
        )
    return ArchiveListResult(items)
