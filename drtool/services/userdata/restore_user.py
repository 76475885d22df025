"""``restore-user``: bring back one user's rows into a database, from a stored export (its
manifest authenticated first, every section checked) or from a backup (restored into a scratch
database, that user's rows read from there), in one transaction on the target."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from drtool.catalog.manifest import ExportManifest, Manifest
from drtool.catalog.seal import check_seal
from drtool.crypto.keys import Identity
from drtool.errors import IntegrityError, UsageError
from drtool.ids import new_id
from drtool.log import get_logger
from drtool.pg.conn import Target
from drtool.pg.dump.snapshot import advisory_lock
from drtool.pg.userdata.copy_out import user_snapshot
from drtool.pg.userdata.stream import SectionCheck, split_sections
from drtool.pg.userdata.tables import Column, UserTable
from drtool.pg.userdata.write import (
    MODES,
    TableOutcome,
    UserRestore,
    commit,
    restore_transaction,
    rollback,
)
from drtool.pipeline.store import load
from drtool.services.context import Context
from drtool.services.keys import configured_identities
from drtool.services.rehearse.scratch import open_scratch, scratch_spec
from drtool.services.restore.auth import backup_major, resolve_backup
from drtool.services.restore.request import parse_to
from drtool.services.restore.run import restore_scratch
from drtool.services.userdata.export import ROWS_OBJECT, check_user, discover_tables
from drtool.storage.base import close_quietly

log = get_logger("restore-user")


@dataclass(frozen=True)
class RestoreUserRequest:
    user_id: str
    to_dsn: str
    from_export: str | None = None
    from_backup: str | None = None
    mode: str = "insert-missing"
    dry_run: bool = False


@dataclass(frozen=True)
class RestoreUserResult:
    user_id: str
    source: str  # "export" | "backup"
    source_id: str
    target: str
    mode: str
    dry_run: bool
    tables: list[TableOutcome] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def total(self, what: str) -> int:
        return sum(int(getattr(t, what)) for t in self.tables)


def _check(req: RestoreUserRequest) -> None:
    if (req.from_export is None) == (req.from_backup is None):
        raise UsageError("restore-user needs exactly one of --from-export ID and --from-backup ID")
    if req.mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}")


def export_tables(manifest: Manifest) -> tuple[list[UserTable], list[SectionCheck]]:
    """The tables of a stored export in stream order, with each section's recorded check."""
    details = manifest.table_details if isinstance(manifest, ExportManifest) else None
    if not isinstance(details, list):
        raise IntegrityError(f"export {manifest.id}: the manifest lists no tables", obj="manifest")
    tables, checks = [], []
    try:
        for d in details:
            tables.append(
                UserTable(
                    schema=str(d["schema"]),
                    name=str(d["name"]),
                    user_column=str(d["user_column"]),
                    columns=tuple(
                        Column(str(c), str(t))
                        for c, t in zip(d["columns"], d["types"], strict=True)
                    ),
                    primary_key=tuple(str(c) for c in d["primary_key"]),
                    is_users_table=bool(d["users_table"]),
                )
            )
            checks.append(SectionCheck(int(d["rows"]), str(d["sha256"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(
            f"export {manifest.id}: the manifest's table list is malformed", obj="manifest"
        ) from exc
    return tables, checks


def authenticate_export(ctx: Context, manifest: Manifest, identities: list[Identity]) -> None:
    """The manifest bound to its rows object by the seal (a swapped object, an edited manifest
    or a wrong key fail here, exit 3), before a row reaches the target."""
    check_seal(
        ctx.storage,
        manifest,
        ROWS_OBJECT,
        identities,
        what=f"export {manifest.id}",
        hint="nothing was restored; use another export or --from-backup",
    )


@dataclass(frozen=True)
class _Done:
    source_id: str
    user_id: str
    outcomes: list[TableOutcome]
    warnings: list[str]


def _finish(job: UserRestore, dry_run: bool, source_id: str, user_id: str) -> _Done:
    if dry_run:
        outcomes = job.plan()
        rollback(job)
    else:
        outcomes = job.apply()
        commit(job)
    return _Done(source_id, user_id, outcomes, list(job.warnings))


def _from_export(ctx: Context, req: RestoreUserRequest, target: Target) -> _Done:
    assert req.from_export is not None
    manifest = ctx.catalog.get(req.from_export, "export")
    user_id = manifest.user_id if isinstance(manifest, ExportManifest) else ""
    if user_id.lower() != req.user_id.strip().lower():
        raise UsageError(
            f"export {manifest.id} holds the rows of user {user_id}, not {req.user_id}",
            hint="`drtool list --kind export` and `drtool show ID` show whose export it is",
        )
    identities = configured_identities(ctx.config)
    tables, checks = export_tables(manifest)
    authenticate_export(ctx, manifest, identities)
    with (
        advisory_lock(target, f"drtool:restore-user:{user_id}"),
        restore_transaction(target, user_id, req.mode) as job,
    ):
        in_target = {t.qualified: t for t in job.check_tables(tables)}
        chunks: Iterator[bytes] = load(
            ctx.storage, manifest.object(ROWS_OBJECT).stored(), identities
        )
        try:
            for table, rows in split_sections(chunks, tables, checks, f"export {manifest.id}"):
                job.load(in_target[table.qualified], rows)
        finally:
            close_quietly(chunks)
        return _finish(job, req.dry_run, manifest.id, user_id)


def _from_backup(ctx: Context, req: RestoreUserRequest, target: Target) -> _Done:
    assert req.from_backup is not None
    manifest = resolve_backup(ctx, req.from_backup)
    spec = scratch_spec(ctx, None)
    with open_scratch(ctx, spec, new_id(ctx.clock()), backup_major(manifest), False) as scratch:
        log.info(
            "restoring backup %s into %s to read one user's rows", manifest.id, scratch.description
        )
        restore_scratch(ctx, manifest.id, scratch.target, scratch.kind == "ephemeral")
        with user_snapshot(
            scratch.target,
            "reading the user's rows from the scratch database",
            ctx.config.database.lock_wait_timeout,
        ) as snap:
            discovery = discover_tables(ctx, snap)
            user_id = check_user(snap, discovery, req.user_id)
            with (
                advisory_lock(target, f"drtool:restore-user:{user_id}"),
                restore_transaction(target, user_id, req.mode) as job,
            ):
                in_target = job.check_tables(discovery.tables)
                for source, dest in zip(discovery.tables, in_target, strict=True):
                    job.load(dest, snap.copy_rows(source, user_id))
                return _finish(job, req.dry_run, manifest.id, user_id)


def restore_user(ctx: Context, req: RestoreUserRequest) -> RestoreUserResult:
    """``restore-user USER_ID (--from-export ID | --from-backup ID) --to DSN``."""
    started = time.monotonic()
    _check(req)
    target = parse_to(req.to_dsn)
    if req.from_export is not None:
        source, done = "export", _from_export(ctx, req, target)
    else:
        source, done = "backup", _from_backup(ctx, req, target)
    log.info(
        "restore-user %s from %s %s into %s (%s%s) done",
        done.user_id,
        source,
        done.source_id,
        target.describe(),
        req.mode,
        ", dry run" if req.dry_run else "",
    )
    return RestoreUserResult(
        user_id=done.user_id,
        source=source,
        source_id=done.source_id,
        target=target.describe(),
        mode=req.mode,
        dry_run=req.dry_run,
        tables=done.outcomes,
        warnings=done.warnings,
        seconds=round(time.monotonic() - started, 3),
    )
