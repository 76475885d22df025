"""``export-users``: the scheduled per-user export job. User ids are read in keyset-paginated
pages (never all in memory); each user is exported in its own snapshot and committed on its
own, so one failure (collected, named in the result) never stops or spoils the others."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from drtool.config import parse_duration
from drtool.errors import EXIT_FAILED, EXIT_OK, DrtoolError, UsageError
from drtool.log import get_logger
from drtool.pg.dump.snapshot import advisory_lock
from drtool.pg.userdata.copy_out import user_snapshot
from drtool.pg.userdata.tables import Discovery, NotExported
from drtool.pg.userdata.users import changed_user_ids, count_users, user_ids
from drtool.services.context import Context
from drtool.services.keys import configured_recipients
from drtool.services.userdata.export import check_user, discover_tables, store_export

PAGE_USERS = 500
PROGRESS_EVERY_S = 10.0

log = get_logger("export-users")


@dataclass(frozen=True)
class FailedExport:
    user_id: str
    error: str


@dataclass(frozen=True)
class ExportUsersResult:
    exported: int
    failed: list[FailedExport] = field(default_factory=list)
    selection: str = "all"
    changed_since: str | None = None
    rows: int = 0
    bytes_stored: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    not_exported: list[NotExported] = field(default_factory=list)
    # user id -> the id of the export stored for them in this run (the audit trail names both)
    exports: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        """Partial failures are data in the result; any of them makes the run a failure."""
        return EXIT_FAILED if self.failed else EXIT_OK

    def item_id(self) -> str | None:
        return None

    def stats(self) -> dict[str, float]:
        return {"users_exported": self.exported, "users_failed": len(self.failed)}

    def summary(self) -> str:
        text = f"{self.exported} user(s) exported"
        if self.failed:
            names = ", ".join(f.user_id for f in self.failed[:10])
            more = f" and {len(self.failed) - 10} more" if len(self.failed) > 10 else ""
            text += f", {len(self.failed)} failed: {names}{more}"
        return text


def _ids(ctx: Context, discovery: Discovery, since: datetime | None) -> Iterator[str]:
    """User ids in order, one page per short query; a user added mid-run may be included."""
    target, cfg = ctx.database(), ctx.config
    last: str | None = None
    while True:
        with user_snapshot(target, "listing users", cfg.database.lock_wait_timeout) as snap:
            if since is None:
                page = user_ids(snap.conn, discovery.users_table, last, PAGE_USERS)
            else:
                page = changed_user_ids(snap.conn, discovery, since, last, PAGE_USERS)
        yield from page
        if len(page) < PAGE_USERS:
            return
        last = page[-1]


def check_selection(all_users: bool, changed_since: str | None) -> timedelta | None:
    """Exactly one of --all and --changed-since DURATION (exit 2 otherwise)."""
    if all_users == (changed_since is not None):
        raise UsageError("export-users needs exactly one of --all and --changed-since DURATION")
    if changed_since is None:
        return None
    try:
        return parse_duration(changed_since)
    except ValueError as exc:
        raise UsageError(f"--changed-since: {exc}") from None


def export_users(
    ctx: Context, *, all_users: bool = False, changed_since: str | None = None
) -> ExportUsersResult:
    """``export-users --all | --changed-since DURATION``."""
    window = check_selection(all_users, changed_since)
    started = time.monotonic()
    recipients = configured_recipients(ctx.config)
    target, cfg = ctx.database(), ctx.config
    since = ctx.clock() - window if window is not None else None
    exported, rows, stored = 0, 0, 0
    failed: list[FailedExport] = []
    exports: dict[str, str] = {}
    warnings: list[str] = []
    not_exported: list[NotExported] = []
    with advisory_lock(target, f"drtool:export-users:{ctx.storage.description}"):
        with user_snapshot(target, "counting users", cfg.database.lock_wait_timeout) as snap:
            discovery = discover_tables(ctx, snap)
            total = count_users(snap.conn, discovery.users_table) if since is None else None
            warnings = list(discovery.warnings)
            not_exported = list(discovery.not_exported)
        log.info(
            "export-users: %s%s",
            f"{total} users" if total is not None else "users",
            f" changed since {since.isoformat()}" if since else "",
        )
        last_progress = time.monotonic()
        # Discovered once per run: a schema change mid-run fails the affected users, named.
        for user_id in _ids(ctx, discovery, since):
            try:
                with user_snapshot(
                    target, f"reading the rows of user {user_id}", cfg.database.lock_wait_timeout
                ) as snap:
                    uid = check_user(snap, discovery, user_id)
                    manifest = store_export(ctx, snap, discovery, uid, recipients)
                exported += 1
                exports[uid] = manifest.id
                rows += sum(manifest.tables.values())
                stored += manifest.size
            except DrtoolError as exc:
                log.error("export of user %s failed: %s", user_id, exc.message)
                failed.append(FailedExport(user_id, exc.message))
            if time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                last_progress = time.monotonic()
                done = exported + len(failed)
                log.info(
                    "export-users: %d%s users done, %d failed, %.1f users/s",
                    done,
                    f"/{total}" if total is not None else "",
                    len(failed),
                    done / max(time.monotonic() - started, 1e-9),
                )
    result = ExportUsersResult(
        exported=exported,
        failed=failed,
        selection="all" if since is None else "changed-since",
        changed_since=since.isoformat() if since else None,
        rows=rows,
        bytes_stored=stored,
        seconds=round(time.monotonic() - started, 3),
        warnings=warnings,
        not_exported=not_exported,
        exports=exports,
    )
    log.info("export-users: %s", result.summary())
    return result
