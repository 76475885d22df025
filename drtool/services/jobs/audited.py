"""Every sensitive operation (SPEC "Configuration & secrets bundle, audit trail") as one
audited call: the CLI and the scheduler call these, never the bare service, so no path
restores, exports, deletes or decrypts without its audit record (services/audit/trail.py:
the trail checked before, the outcome recorded after, also on failure)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from drtool.services.archive.restore import ArchiveRestoreResult, restore_archive
from drtool.services.archive.run import ArchiveRequest, ArchiveRunResult, run_archive
from drtool.services.audit.trail import audited, redact_dsn
from drtool.services.bundle.run import BundleRestoreResult, restore_bundle
from drtool.services.context import Context
from drtool.services.rehearse.run import RehearseRequest, RehearseResult, rehearse
from drtool.services.restore.run import RestoreRequest, RestoreResult, run_restore
from drtool.services.retention.prune import PruneResult, run_prune
from drtool.services.stream.drop import StreamDropResult, drop_stream
from drtool.services.stream.replay import run_restore_until
from drtool.services.userdata.export import ExportResult, export_user
from drtool.services.userdata.export_users import ExportUsersResult, export_users
from drtool.services.userdata.restore_user import (
    RestoreUserRequest,
    RestoreUserResult,
    restore_user,
)
from drtool.services.verify.run import VerifyResult, verify


def restore_audited(ctx: Context, req: RestoreRequest) -> RestoreResult:
    """``restore`` (dry runs too: they decrypt the backup with the identity)."""
    if req.to_file is not None:
        target: str | None = f"file:{req.to_file}"
    else:
        target = redact_dsn(req.to_dsn) if req.to_dsn else None
    with audited(ctx, "restore", items=[f"backup:{req.ref}"], target=target) as entry:
        result = run_restore_until(ctx, req) if req.until is not None else run_restore(ctx, req)
        entry.items[:] = [f"backup:{result.id}"]
        entry.detail.update(dry_run=result.dry_run, rows=sum(result.tables.values()))
        if req.force:
            entry.detail["force"] = True
    return result


def bundle_restore_audited(ctx: Context, ref: str, out: Path) -> BundleRestoreResult:
    """``bundle restore ID --out DIR``: the app's secrets decrypted and handed out as files
    (names only in the record, never a value)."""
    with audited(ctx, "bundle restore", items=[f"backup:{ref}"], target=f"file:{out}") as entry:
        result = restore_bundle(ctx, ref, out)
        entry.items[:] = [f"backup:{result.backup_id}"]
        entry.detail.update(files=len(result.files), env=len(result.env))
    return result


def export_user_audited(ctx: Context, user_id: str, out: Path | None = None) -> ExportResult:
    """``export-user USER_ID [--out PATH]``: stored in storage, or handed out as a file."""
    target = f"file:{out}" if out is not None else ctx.where
    with audited(ctx, "export-user", items=[f"user:{user_id}"], target=target) as entry:
        result = export_user(ctx, user_id, out)
        entry.items[:] = [f"user:{result.user_id}"]
        if out is None:
            entry.add(f"export:{result.id}")
        entry.detail.update(rows=sum(result.tables.values()))
    return result


def export_users_audited(
    ctx: Context, *, all_users: bool, changed_since: str | None
) -> ExportUsersResult:
    """``export-users``: one record for the run, naming every user and export."""
    with audited(ctx, "export-users", target=ctx.where) as entry:
        entry.detail["selection"] = "all" if all_users else f"changed-since {changed_since}"
        result = export_users(ctx, all_users=all_users, changed_since=changed_since)
        for uid, export_id in result.exports.items():
            entry.add(f"user:{uid}", f"export:{export_id}")
        entry.detail.update(exported=result.exported, failed=[f.user_id for f in result.failed])
        entry.exit_code = result.exit_code
    return result


def restore_user_audited(ctx: Context, req: RestoreUserRequest) -> RestoreUserResult:
    """``restore-user USER_ID (--from-export ID | --from-backup ID) --to DSN``."""
    source = f"export:{req.from_export}" if req.from_export else f"backup:{req.from_backup}"
    items = [f"user:{req.user_id}", source]
    with audited(ctx, "restore-user", items=items, target=redact_dsn(req.to_dsn)) as entry:
        result = restore_user(ctx, req)
        entry.items[:] = [f"user:{result.user_id}", f"{result.source}:{result.source_id}"]
        entry.detail.update(mode=result.mode, dry_run=result.dry_run, rows=result.total("inserted"))
    return result


def archive_restore_audited(
    ctx: Context,
    policy: str,
    to_dsn: str,
    *,
    since: datetime | None,
    until: datetime | None,
) -> ArchiveRestoreResult:
    """``archive restore --policy NAME --to DSN``: archived rows put back."""
    items = [f"policy:{policy}"]
    with audited(ctx, "archive restore", items=items, target=redact_dsn(to_dsn)) as entry:
        entry.detail.update(
            since=since.isoformat() if since else None, until=until.isoformat() if until else None
        )
        result = restore_archive(ctx, policy, to_dsn, since=since, until=until)
        entry.add(*(f"archive:{b.id}" for b in result.batches))
        entry.detail.update(rows=result.rows, inserted=result.inserted)
    return result


def archive_run_audited(ctx: Context, req: ArchiveRequest) -> ArchiveRunResult:
    """``archive run``: deletions are audited (one record per run, the rows deleted per
    policy); a dry run deletes nothing and is not."""
    if req.dry_run:
        return run_archive(ctx, req)
    items = [f"policy:{req.policy}"] if req.policy else []
    with audited(ctx, "archive run", items=items, target=_database(ctx)) as entry:
        result = run_archive(ctx, req)
        entry.add(*(f"policy:{p.name}" for p in result.policies))
        entry.detail["deleted"] = {p.name: p.deleted for p in result.policies}
        entry.detail["action"] = {p.name: p.action for p in result.policies}
    return result


def prune_audited(ctx: Context, *, dry_run: bool) -> PruneResult:
    """``prune``: removals are audited; a dry run removes nothing and is not."""
    if dry_run:
        return run_prune(ctx, dry_run=True)
    with audited(ctx, "prune", target=ctx.where) as entry:
        result = run_prune(ctx, dry_run=False)
        entry.add(*(f"{e.kind}:{e.id}" for e in result.removed))
        entry.detail["abandoned_removed"] = result.abandoned_removed
        entry.detail["replicas"] = {
            r.name: [f"{e.kind}:{e.id}" for e in r.removed] for r in result.replicas
        }
        entry.exit_code = result.exit_code
    return result


def verify_audited(
    ctx: Context, ref: str | None, *, all_items: bool, deep: bool, stream: bool = False
) -> VerifyResult:
    """``verify``: only ``--deep`` decrypts with the identity, and only it is audited."""
    if not deep:
        return verify(ctx, ref, all_items=all_items, deep=False, stream=stream)
    items = ["all"] if all_items else ["stream"] if stream else [f"item:{ref or 'latest'}"]
    with audited(ctx, "verify --deep", items=items, target=ctx.where) as entry:
        result = verify(ctx, ref, all_items=all_items, deep=True, stream=stream)
        entry.items[:] = [f"{i.kind}:{i.id}" for i in result.items]
        entry.exit_code = result.exit_code
    return result


def rehearse_audited(ctx: Context, request: RehearseRequest) -> RehearseResult:
    """``rehearse``: decrypts a backup with the identity into a scratch database."""
    target = redact_dsn(request.scratch) if request.scratch else "ephemeral cluster"
    with audited(ctx, "rehearse", items=[f"backup:{request.ref}"], target=target) as entry:
        result = rehearse(ctx, request)
        entry.items[:] = [f"backup:{result.record.backup_id}", f"drill:{result.record.id}"]
        entry.detail["verdict"] = result.record.verdict
        entry.exit_code = result.exit_code
    return result


def _database(ctx: Context) -> str | None:
    try:
        return ctx.database().redacted()
    except Exception:
        return None


def stream_drop_audited(ctx: Context) -> StreamDropResult:
    """``stream drop``: the replication slot goes, and with it the changes not yet stored."""
    slot = ctx.config.stream.slot
    target = redact_dsn(ctx.config.database.dsn)
    with audited(ctx, "stream drop", items=[f"slot:{slot}"], target=target) as entry:
        result = drop_stream(ctx)
        entry.detail.update(dropped=result.dropped_slot, retained_bytes=result.retained_bytes or 0)
    return result
