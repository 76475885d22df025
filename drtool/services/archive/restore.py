"""``archive restore``: put a policy's archived rows back (insert-missing), batch by batch,
each batch authenticated first (manifest seal, stored and plaintext SHA-256, row count and
canonical row hash) and void batches skipped."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

from drtool.catalog.archive_records import ROWS_OBJECT, ArchiveEntry, archive_entries
from drtool.catalog.manifest import ArchiveManifest, expect_kind
from drtool.catalog.seal import check_seal
from drtool.crypto.keys import Identity
from drtool.errors import IntegrityError, UsageError
from drtool.log import get_logger
from drtool.pg.archive.restore import open_restore_target
from drtool.pg.archive.table import split_table
from drtool.pg.conn import parse_target
from drtool.pipeline.store import load
from drtool.services.archive.codec import copy_header, decode_batch, rows_sha256
from drtool.services.context import Context
from drtool.services.keys import configured_identities

POLICY_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

log = get_logger("archive")


@dataclass(frozen=True)
class BatchRestore:
    id: str
    table: str
    rows: int
    inserted: int


@dataclass(frozen=True)
class ArchiveRestoreResult:
    policy: str
    target: str
    since: datetime | None
    until: datetime | None
    batches: list[BatchRestore]
    rows: int
    inserted: int
    void_skipped: int
    seconds: float


def parse_time(text: str | None, flag: str) -> datetime | None:
    """An ISO date or date-time; UTC when it has no zone."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            day = date.fromisoformat(text.strip())
        except ValueError:
            raise UsageError(
                f"{flag} {text!r} is not an ISO date or date-time (e.g. 2024-01-31 or "
                "2024-01-31T12:00:00Z)"
            ) from None
        value = datetime(day.year, day.month, day.day)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _batch(entry: ArchiveEntry) -> ArchiveManifest:
    return expect_kind(entry.manifest, ArchiveManifest)


def _overlaps(entry: ArchiveEntry, since: datetime | None, until: datetime | None) -> bool:
    batch = _batch(entry)
    low, high = batch.time_min, batch.time_max
    if since is not None and high and datetime.fromisoformat(high) < since:
        return False
    return not (until is not None and low and datetime.fromisoformat(low) >= until)


def verified_rows(ctx: Context, entry: ArchiveEntry, identities: list[Identity]) -> list[bytes]:
    """The batch's rows, only once everything about them has been authenticated."""
    manifest = entry.manifest
    batch = _batch(entry)
    what = f"archive batch {manifest.id}"
    check_seal(
        ctx.storage,
        manifest,
        ROWS_OBJECT,
        identities,
        what=what,
        hint="nothing of this batch was restored; the stored batch was altered or replaced",
    )
    obj = manifest.object(ROWS_OBJECT).stored()
    body = b"".join(load(ctx.storage, obj, identities))
    schema, table = split_table(batch.table)
    header = copy_header(schema, table, list(batch.columns))
    lines = decode_batch(body, header, what)
    if len(lines) != batch.rows or rows_sha256(body, header) != batch.rows_sha256:
        raise IntegrityError(f"{what}: rows differ from the manifest's count or hash", obj="rows")
    return lines


def restore_archive(
    ctx: Context,
    policy: str,
    to_dsn: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ArchiveRestoreResult:
    if not POLICY_NAME.match(policy):
        raise UsageError(f"--policy {policy!r} is not a policy name")
    if since is not None and until is not None and since >= until:
        raise UsageError("--since must be before --until")
    started = time.monotonic()
    entries = [e for e in archive_entries(ctx.storage, policy) if e.manifest.kind == "archive"]
    if not entries:
        raise UsageError(
            f"no archived batches for policy {policy} in {ctx.storage.description}",
            hint="run `drtool archive list` to see what is archived",
        )
    identities = configured_identities(ctx.config)
    chosen = [e for e in reversed(entries) if _overlaps(e, since, until)]
    void = [e for e in chosen if e.void_reason is not None]
    target = parse_target(to_dsn)
    done: list[BatchRestore] = []
    with open_restore_target(target) as dest:
        for entry in chosen:
            if entry.void_reason is not None:
                continue
            batch = _batch(entry)
            lines = verified_rows(ctx, entry, identities)
            inserted = dest.insert_missing(
                batch.table,
                list(batch.columns),
                list(batch.pk),
                batch.time_column,
                lines,
                since,
                until,
            )
            done.append(BatchRestore(batch.id, batch.table, len(lines), inserted))
            log.info(
                "archive batch %s: %d of %d rows inserted", entry.manifest.id, inserted, len(lines)
            )
    return ArchiveRestoreResult(
        policy=policy,
        target=target.describe(),
        since=since,
        until=until,
        batches=done,
        rows=sum(b.rows for b in done),
        inserted=sum(b.inserted for b in done),
        void_skipped=len(void),
        seconds=round(time.monotonic() - started, 3),
    )
