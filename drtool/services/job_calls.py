"""Each scheduled job as one call: the service function run through ``run_job`` with its
result hooks. The CLI commands and the scheduler call these, so both record, measure and
notify a run the same way."""

from __future__ import annotations

from drtool.errors import EXIT_INTEGRITY, EXIT_OBJECTIVE
from drtool.services.archive import ArchiveRequest, ArchiveRunResult, run_archive
from drtool.services.backup import BackupResult, run_backup
from drtool.services.context import Context
from drtool.services.export_users import ExportUsersResult, export_users
from drtool.services.jobs import run_job
from drtool.services.prune import PruneResult, run_prune
from drtool.services.rehearse import RehearseRequest, RehearseResult, rehearse
from drtool.services.verify import VerifyResult, verify


def backup_job(ctx: Context, label: str | None) -> BackupResult:
    return run_job(
        ctx, "backup", lambda: run_backup(ctx, label=label), item_id_of=BackupResult.item_id
    )


def verify_job(ctx: Context, ref: str | None, *, all_items: bool, deep: bool) -> VerifyResult:
    return run_job(
        ctx,
        "verify",
        lambda: verify(ctx, ref, all_items=all_items, deep=deep),
        item_id_of=VerifyResult.single_id,
        failed_of=VerifyResult.failed,
        failed_exit_code=EXIT_INTEGRITY,
        stats_of=VerifyResult.stats,
        summary_of=VerifyResult.summary,
    )


def rehearse_job(ctx: Context, request: RehearseRequest) -> RehearseResult:
    return run_job(
        ctx,
        "rehearse",
        lambda: rehearse(ctx, request),
        item_id_of=RehearseResult.item_id,
        failed_of=RehearseResult.failed,
        failed_exit_code=EXIT_OBJECTIVE,
        stats_of=RehearseResult.stats,
        summary_of=RehearseResult.summary,
        events=("drill",),
    )


def prune_job(ctx: Context, *, dry_run: bool) -> PruneResult:
    return run_job(
        ctx, "prune", lambda: run_prune(ctx, dry_run=dry_run), stats_of=PruneResult.stats
    )


def export_users_job(
    ctx: Context, *, all_users: bool, changed_since: str | None
) -> ExportUsersResult:
    return run_job(
        ctx,
        "export-users",
        lambda: export_users(ctx, all_users=all_users, changed_since=changed_since),
        failed_of=ExportUsersResult.is_failure,
        stats_of=ExportUsersResult.stats,
        summary_of=ExportUsersResult.summary,
    )


def archive_job(ctx: Context, request: ArchiveRequest) -> ArchiveRunResult:
    return run_job(
        ctx, "archive", lambda: run_archive(ctx, request), stats_of=ArchiveRunResult.stats
    )
