"""``archive run``: per policy, under its advisory lock, settle what a killed run left, then
archive-then-delete (or purge) matching rows batch by batch in primary-key order, within
--max-rows, --max-duration and --sleep; ``--dry-run`` only counts."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from drtool.catalog.archive_records import read_journal
from drtool.config import ArchivalPolicy
from drtool.crypto.keys import Recipient
from drtool.errors import EXIT_OK, UsageError
from drtool.log import get_logger
from drtool.pg.archive.session import ArchiveSession, Limits, open_archive_session
from drtool.pg.archive.table import TableInfo, require_columns
from drtool.pg.dump.snapshot import advisory_lock
from drtool.services.archive.loop import archive_loop
from drtool.services.archive.purge import run_purge
from drtool.services.archive.reconcile import ReconcileStats, reconcile
from drtool.services.context import Context
from drtool.services.keys import configured_recipients

log = get_logger("archive")


@dataclass(frozen=True)
class ArchiveRequest:
    policy: str | None = None
    dry_run: bool = False
    batch_size: int | None = None
    max_rows: int | None = None
    sleep_seconds: float = 0.0
    max_duration: timedelta | None = None
    vacuum: bool = False


@dataclass(frozen=True)
class PolicyRun:
    """One policy's outcome; ``matched`` is the rows matching when the policy started."""

    name: str
    action: str
    table: str
    cutoff: datetime
    matched: int
    archived: int
    deleted: int
    batches: int
    bytes: int
    dry_run: bool
    seconds: float
    void_batches: int = 0
    max_transaction_seconds: float = 0.0
    stopped: str | None = None
    record_id: str | None = None
    reconciled: ReconcileStats = field(default_factory=ReconcileStats)
    pending_journal: int = 0
    vacuumed: bool = False


@dataclass(frozen=True)
class ArchiveRunResult:
    policies: list[PolicyRun]
    dry_run: bool

    exit_code = EXIT_OK  # a policy that failed raises

    def item_id(self) -> str | None:
        return None

    def summary(self) -> str:
        return "; ".join(
            f"{p.name}: {p.archived} archived, {p.deleted} deleted in {p.batches} batch(es)"
            for p in self.policies
        )

    def stats(self) -> dict[str, float]:
        return {
            "rows_archived": sum(p.archived for p in self.policies),
            "rows_deleted": sum(p.deleted for p in self.policies),
            "bytes": sum(p.bytes for p in self.policies),
        }


def lock_name(policy: str) -> str:
    return f"drtool:archive:{policy}"


def select_policies(policies: list[ArchivalPolicy], name: str | None) -> list[ArchivalPolicy]:
    if name is None:
        if not policies:
            raise UsageError(
                "no archival policies are configured",
                hint="add archival.policies to the configuration (docs/archival.md)",
            )
        return policies
    chosen = [p for p in policies if p.name == name]
    if not chosen:
        known = ", ".join(p.name for p in policies) or "none configured"
        raise UsageError(f"--policy {name!r}: no such archival policy (known: {known})")
    return chosen


def _checker(policy: ArchivalPolicy, index: int) -> Callable[[TableInfo], None]:
    where = f"archival.policies[{index}] ({policy.name})"

    def check(info: TableInfo) -> None:
        columns = [(policy.time_column, f"{where}.time_column")]
        columns += [(c, f"{where}.where.{c}") for c in policy.where]
        require_columns(info, columns)

    return check


@contextlib.contextmanager
def _session(
    ctx: Context, policy: ArchivalPolicy, index: int, cutoff: datetime
) -> Iterator[ArchiveSession]:
    cfg = ctx.config.archival
    with open_archive_session(
        ctx.database(),
        policy=policy.name,
        table=policy.table,
        time_column=policy.time_column,
        cutoff=cutoff,
        where=policy.where,
        limits=Limits(cfg.lock_timeout, cfg.statement_timeout),
        check=_checker(policy, index),
    ) as session:
        yield session


def _check_request(req: ArchiveRequest) -> None:
    if req.batch_size is not None and req.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if req.max_rows is not None and req.max_rows < 1:
        raise UsageError("--max-rows must be at least 1")
    if req.sleep_seconds < 0:
        raise UsageError("--sleep must not be negative")


def run_archive(ctx: Context, req: ArchiveRequest) -> ArchiveRunResult:
    _check_request(req)
    all_policies = ctx.config.archival.policies
    chosen = select_policies(all_policies, req.policy)
    indexed = [(all_policies.index(p), p) for p in chosen]
    recipients: list[Recipient] = []
    if not req.dry_run and any(p.action == "archive" for p in chosen):
        recipients = configured_recipients(ctx.config)
    run_at = ctx.clock()
    cutoffs = {p.name: run_at - p.older_than for p in chosen}
    for index, policy in indexed:  # every policy checked before any row is touched
        with _session(ctx, policy, index, cutoffs[policy.name]):
            pass
    started = time.monotonic()
    deadline = started + req.max_duration.total_seconds() if req.max_duration is not None else None
    results: list[PolicyRun] = []
    for index, policy in indexed:
        results.append(
            _run_policy(ctx, policy, index, req, run_at, cutoffs[policy.name], recipients, deadline)
        )
    return ArchiveRunResult(results, req.dry_run)


def _run_policy(
    ctx: Context,
    policy: ArchivalPolicy,
    index: int,
    req: ArchiveRequest,
    run_at: datetime,
    cutoff: datetime,
    recipients: list[Recipient],
    deadline: float | None,
) -> PolicyRun:
    started = time.monotonic()
    batch_size = req.batch_size or ctx.config.archival.batch_size
    if req.dry_run:
        with _session(ctx, policy, index, cutoff) as session:
            matched = session.count()
            table = session.info.qualified
        planned = matched if req.max_rows is None else min(matched, req.max_rows)
        return PolicyRun(
            name=policy.name,
            action=policy.action,
            table=table,
            cutoff=cutoff,
            matched=matched,
            archived=0,
            deleted=0,
            batches=math.ceil(planned / batch_size),
            bytes=0,
            dry_run=True,
            seconds=time.monotonic() - started,
            pending_journal=len(read_journal(ctx.storage, policy.name)),
        )
    with (
        advisory_lock(ctx.database(), lock_name(policy.name)),
        _session(ctx, policy, index, cutoff) as session,
    ):
        stats = reconcile(ctx, read_journal(ctx.storage, policy.name), session)
        matched = session.count()
        log.info(
            "archive policy %s (%s %s): %d rows older than %s match",
            policy.name,
            policy.action,
            session.info.qualified,
            matched,
            cutoff.isoformat(),
        )
        if policy.action == "purge":
            purge = run_purge(
                ctx,
                policy,
                session,
                run_at=run_at,
                cutoff=cutoff,
                batch_size=batch_size,
                max_rows=req.max_rows,
                deadline=deadline,
                sleep_seconds=req.sleep_seconds,
            )
            run = PolicyRun(
                name=policy.name,
                action="purge",
                table=session.info.qualified,
                cutoff=cutoff,
                matched=matched,
                archived=0,
                deleted=purge.deleted + stats.deleted,
                batches=purge.batches,
                bytes=0,
                dry_run=False,
                seconds=0.0,
                max_transaction_seconds=purge.max_transaction_seconds,
                stopped=purge.stopped,
                record_id=purge.record_id,
                reconciled=stats,
            )
        else:
            loop = archive_loop(
                ctx,
                policy,
                session,
                lambda: _session(ctx, policy, index, cutoff),
                batch_size=batch_size,
                max_rows=req.max_rows,
                sleep_seconds=req.sleep_seconds,
                deadline=deadline,
                run_at=run_at,
                cutoff=cutoff,
                recipients=recipients,
            )
            run = PolicyRun(
                name=policy.name,
                action="archive",
                table=session.info.qualified,
                cutoff=cutoff,
                matched=0,
                archived=loop.archived,
                deleted=loop.deleted,
                batches=loop.batches,
                bytes=loop.bytes,
                dry_run=False,
                seconds=0.0,
                void_batches=loop.voided,
                max_transaction_seconds=round(loop.longest, 4),
                stopped=loop.stopped,
            )
            run = _with(run, matched=matched, reconciled=stats, deleted=run.deleted + stats.deleted)
        if req.vacuum:
            session.vacuum()
            run = _with(run, vacuumed=True)
    return _with(run, seconds=round(time.monotonic() - started, 3))


def _with(run: PolicyRun, **changes: object) -> PolicyRun:
    return replace(run, **changes)  # type: ignore[arg-type]
