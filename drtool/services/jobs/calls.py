"""Each scheduled job as one call: the service function run through ``run_job`` with its
result hooks. The CLI commands and the scheduler call these, so both record, measure and
notify a run the same way; each result type says its own exit code (services/jobs.Outcome)."""

from __future__ import annotations

import socket
import threading

from drtool.services.archive.run import ArchiveRequest, ArchiveRunResult
from drtool.services.backup import BackupResult, run_backup
from drtool.services.context import Context
from drtool.services.jobs.audited import (
    archive_run_audited,
    export_users_audited,
    prune_audited,
    rehearse_audited,
    verify_audited,
)
from drtool.services.jobs.job import run_job
from drtool.services.jobs.notify import notify
from drtool.services.rehearse.run import RehearseRequest, RehearseResult
from drtool.services.replicate.run import (
    DEFAULT_JOBS,
    ReplicaResult,
    ReplicateResult,
    replica_names,
    replicate_each,
    replicate_to,
)
from drtool.services.retention.prune import PruneResult
from drtool.services.stream.run import StreamRunResult, run_stream
from drtool.services.userdata.export_users import ExportUsersResult
from drtool.services.verify.run import VerifyResult


def backup_job(ctx: Context, label: str | None, jobs: int | None = None) -> BackupResult:
    return run_job(ctx, "backup", lambda: run_backup(ctx, label=label, jobs=jobs))


def verify_job(
    ctx: Context, ref: str | None, *, all_items: bool, deep: bool, stream: bool = False
) -> VerifyResult:
    return run_job(
        ctx,
        "verify",
        lambda: verify_audited(ctx, ref, all_items=all_items, deep=deep, stream=stream),
        stats_of=VerifyResult.stats,
    )


def rehearse_job(ctx: Context, request: RehearseRequest) -> RehearseResult:
    return run_job(
        ctx,
        "rehearse",
        lambda: rehearse_audited(ctx, request),
        stats_of=RehearseResult.stats,
        events=("drill",),
    )


def prune_job(ctx: Context, *, dry_run: bool) -> PruneResult:
    return run_job(
        ctx, "prune", lambda: prune_audited(ctx, dry_run=dry_run), stats_of=PruneResult.stats
    )


def export_users_job(
    ctx: Context, *, all_users: bool, changed_since: str | None
) -> ExportUsersResult:
    return run_job(
        ctx,
        "export-users",
        lambda: export_users_audited(ctx, all_users=all_users, changed_since=changed_since),
        stats_of=ExportUsersResult.stats,
    )


def archive_job(ctx: Context, request: ArchiveRequest) -> ArchiveRunResult:
    return run_job(
        ctx, "archive", lambda: archive_run_audited(ctx, request), stats_of=ArchiveRunResult.stats
    )


def replicate_job(ctx: Context, *, to: str | None, jobs: int = DEFAULT_JOBS) -> ReplicateResult:
    """One job per replica (``replicate.<name>``): each has its run record and metrics, and a
    replica that fails (unreachable, a damaged source item) does not stop the others."""

    def one(name: str) -> ReplicaResult:
        return run_job(
            ctx,
            f"replicate.{name}",
            lambda: replicate_to(ctx, name, jobs=jobs),
            stats_of=ReplicaResult.stats,
        )

    return replicate_each(replica_names(ctx, to), one)


def stream_run_job(ctx: Context, stop: threading.Event, *, once: bool) -> StreamRunResult:
    """``stream run``: a slot lag above stream.max_slot_lag is notified as a breach."""
    host = socket.gethostname()

    def on_breach(text: str) -> None:
        notify(ctx.config, "breach", f"drtool stream on {host}: {text}", {"job": "stream"})

    return run_stream(ctx, stop, once=once, on_breach=on_breach)
