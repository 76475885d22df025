"""The ``rehearse`` use case, a DR drill: restore a backup into scratch with the restore code
(integrity first), validate it, measure RTO (start to validated) and RPO, and record the drill
(``drills/<id>.json``) and, if asked, a Markdown report. Nothing the drill created remains
unless ``--keep``."""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from drtool import __version__
from drtool.catalog.manifest import BackupManifest, Manifest
from drtool.catalog.records.drills import (
    VERDICT_FAIL,
    VERDICT_PASS,
    CheckResult,
    DrillRecord,
    TableCount,
    drill_records,
    write_drill_record,
)
from drtool.errors import EXIT_OBJECTIVE, EXIT_OK, DrtoolError, IntegrityError, RefusedError
from drtool.ids import new_id
from drtool.log import get_logger, redact
from drtool.pg.cluster.procs import exit_on_sigterm
from drtool.services.bundle.run import check_bundle
from drtool.services.context import Context
from drtool.services.keys import configured_identities
from drtool.services.rehearse.report import TREND_DRILLS, check_report_path, write_report
from drtool.services.rehearse.scratch import (
    EPHEMERAL,
    KeptScratch,
    Scratch,
    open_scratch,
    scratch_spec,
)
from drtool.services.rehearse.validate import (
    builtin_checks,
    format_seconds,
    judge,
    run_checks,
    snapshot_time,
    table_counts,
    worst_gap,
)
from drtool.services.restore.auth import backup_major, resolve_backup
from drtool.services.restore.run import RestoreResult, restore_scratch
from drtool.services.stream.chain import ReplayPlan
from drtool.services.stream.replay import (
    PointInTime,
    check_counts,
    parse_until,
    prepare,
    replay,
)

log = get_logger("rehearse")

__all__ = ["RehearseRequest", "RehearseResult", "rehearse"]


@dataclass(frozen=True)
class RehearseRequest:
    """``rehearse [ID|latest] [--scratch DSN] [--report PATH] [--keep]``."""

    ref: str = "latest"
    scratch: str | None = None
    report: Path | None = None
    keep: bool = False
    # ``--until TIME`` (or ``now``, the drill's own start): replay the change stream.
    until: str | None = None


@dataclass(frozen=True)
class RehearseResult:
    record: DrillRecord
    report_path: str | None = None
    kept: KeptScratch | None = None

    @property
    def passed(self) -> bool:
        return self.record.passed

    @property
    def exit_code(self) -> int:
        """A completed drill that failed a check or an objective; an integrity failure
        raises (exit 3) instead of returning."""
        return EXIT_OK if self.passed else EXIT_OBJECTIVE

    def item_id(self) -> str | None:
        return self.record.backup_id

    def summary(self) -> str:
        r = self.record
        rto = format_seconds(r.rto_seconds) if r.rto_seconds is not None else "-"
        rpo = format_seconds(r.rpo_seconds) if r.rpo_seconds is not None else "-"
        head = (
            f"drill {r.id} of backup {r.backup_id}: {r.verdict.upper()}, RTO {rto} "
            f"(objective {r.objectives.get('rto')}), RPO {rpo} "
            f"(objective {r.objectives.get('rpo')})"
        )
        return head + (f"; {'; '.join(r.failures)}" if r.failures else "")

    def stats(self) -> dict[str, float]:
        r = self.record
        out = {
            "checks_failed": float(sum(1 for c in r.checks if not c.ok)),
            "tables_failed": float(sum(1 for t in r.tables if not t.ok)),
        }
        for name in ("rto_seconds", "rpo_seconds", "rpo_worst_gap_seconds"):
            value = getattr(r, name)
            if value is not None:
                out[name] = float(value)
        return out


@dataclass
class _Run:
    """What the drill learned, filled in as it goes."""

    stages: dict[str, float]
    restored: RestoreResult | None = None
    replay: ReplayPlan | None = None
    point_in_time: PointInTime | None = None
    replay_warnings: list[str] = field(default_factory=list)
    tables: list[TableCount] | None = None
    checks: list[CheckResult] | None = None
    validated_at: float | None = None
    error: DrtoolError | None = None
    scratch: Scratch | None = None


def rehearse(ctx: Context, req: RehearseRequest) -> RehearseResult:
    """Restore ``req.ref`` into scratch, validate, judge against the objectives, record.

    Raises IntegrityError (exit 3) after recording a drill whose backup failed integrity, and
    the error of a drill that could not complete (recorded when the drill had started). A
    completed drill is returned whatever its verdict (exit 4 is the caller's)."""
    started = time.monotonic()
    started_at = ctx.clock()
    drill_id = new_id(started_at)
    if req.report is not None:
        check_report_path(req.report)
    spec = scratch_spec(ctx, req.scratch)
    until = _until(req.until, started_at)
    replay_plan: ReplayPlan | None = None
    pit_warnings: list[str] = []
    if until is not None:
        replay_plan, pit_warnings = prepare(ctx, req.ref, until)
        manifest: Manifest = replay_plan.base
    else:
        manifest = resolve_backup(ctx, req.ref)
    configured_identities(ctx.config)  # a missing identity exits 2 before anything starts
    exit_on_sigterm()
    log.info("drill %s: rehearsing backup %s (%s scratch)", drill_id, manifest.id, spec.kind)
    run = _Run(stages={}, replay=replay_plan, replay_warnings=pit_warnings)
    with contextlib.ExitStack() as stack:
        try:
            t0 = time.monotonic()
            scratch = stack.enter_context(
                open_scratch(ctx, spec, drill_id, backup_major(manifest), req.keep)
            )
            run.scratch = scratch
            run.stages["scratch"] = time.monotonic() - t0
            _restore_and_validate(ctx, manifest, scratch, run, until)
        except RefusedError:
            raise  # refused before anything was created: no drill happened
        except DrtoolError as exc:
            run.error = exc
    record = _record(ctx, drill_id, started, started_at, manifest, run)
    try:
        write_drill_record(ctx.storage, record)
    except DrtoolError as exc:
        if run.error is None:
            raise
        log.warning("could not record drill %s: %s", drill_id, exc.message)
    for failure in record.failures:
        log.warning("drill %s: %s", drill_id, failure)
    log.info("drill %s: %s", drill_id, record.verdict.upper())
    report = None
    if req.report is not None:
        try:
            trend = drill_records(ctx.storage, TREND_DRILLS)
            report = str(write_report(req.report, record, manifest, ctx.storage.description, trend))
        except DrtoolError as exc:
            if run.error is None:
                raise
            log.warning("could not write the drill report: %s", exc.message)
    if run.error is not None:
        raise run.error
    kept = run.scratch.kept if run.scratch is not None else None
    return RehearseResult(record, report, kept)


def _restore_and_validate(
    ctx: Context, manifest: Manifest, scratch: Scratch, run: _Run, until: datetime | None
) -> None:
    restored = restore_scratch(ctx, manifest.id, scratch.target, scratch.kind == EPHEMERAL)
    ctx.check_abort()  # the restore's counting moves no data: a timeout during it stops here
    if run.replay is not None and until is not None:
        identities = configured_identities(ctx.config)
        pit = replay(ctx, run.replay, scratch.target, until, identities)
        pit.warnings = list(run.replay_warnings)
        run.point_in_time = pit
        run.stages["replay"] = pit.seconds
        counts = check_counts(scratch.target, pit.expected_counts(restored.tables))
        expected = pit.expected_counts(dict(manifest.tables))
        restored = replace(restored, tables=counts)
        manifest = manifest.model_copy(update={"tables": expected})
    run.restored = restored
    stages = restored.stages
    run.stages["prepare"] = stages.get("prepare", 0.0)
    run.stages["fetch_decrypt"] = stages.get("fetch_decrypt", 0.0)
    run.stages["restore"] = stages.get("restore", 0.0)
    t0 = time.monotonic()
    run.tables = table_counts(manifest, restored)
    run.checks = run_checks(scratch.target, ctx.config.rehearsal.checks, ctx.check_abort)
    run.checks += builtin_checks(scratch.target, manifest, restored)
    if isinstance(manifest, BackupManifest):
        bundle = check_bundle(ctx, manifest)
        if bundle is not None:
            check = CheckResult(name="bundle", ok=bundle.ok, detail=bundle.detail, kind="bundle")
            run.checks.append(check)
    ctx.check_abort()
    run.validated_at = time.monotonic()
    # The restore's exact count(*) of every table is the first part of the validation.
    run.stages["validate"] = stages.get("count", 0.0) + run.validated_at - t0


def _until(text: str | None, now: datetime) -> datetime | None:
    """``--until``: a time, or ``now`` (the drill's start: "if we lost the database now")."""
    if text is None:
        return None
    return now if text.strip().lower() == "now" else parse_until(text)


def _record(
    ctx: Context,
    drill_id: str,
    started: float,
    started_at: datetime,
    manifest: Manifest,
    run: _Run,
) -> DrillRecord:
    rpo_seconds = round((started_at - snapshot_time(manifest)).total_seconds(), 3)
    pit = run.point_in_time
    if run.replay is not None:
        # Point in time: what the stream had not stored of the time recovered to.
        covered = run.replay.covered_to
        target_time = pit.until if pit is not None else started_at
        lost = (target_time - covered).total_seconds() if covered is not None else rpo_seconds
        rpo_seconds = round(max(lost, 0.0), 3)
    gap = worst_gap(ctx.catalog.listing("backup").items, started_at)
    rto = round(run.validated_at - started, 3) if run.validated_at is not None else None
    judgement = judge(
        ctx.config.objectives, run.tables or [], run.checks or [], rto, rpo_seconds, gap
    )
    failures = list(judgement.failures)
    integrity = run.error.message if isinstance(run.error, IntegrityError) else None
    error = run.error.message if run.error is not None and integrity is None else None
    if integrity is not None:
        failures.insert(0, f"integrity: {integrity}")
    elif error is not None:
        failures.insert(0, f"the drill did not complete: {error}")
    scratch = run.scratch
    restored = run.restored
    dump = next((o for o in manifest.objects if o.name == "dump"), None)
    return DrillRecord(
        id=drill_id,
        backup_id=manifest.id,
        created_at=started_at,
        finished_at=ctx.clock(),
        verdict=VERDICT_FAIL if failures else VERDICT_PASS,
        rto_seconds=rto,
        rpo_seconds=rpo_seconds,
        rpo_worst_gap_seconds=gap.seconds if gap is not None else None,
        rpo_worst_gap=gap.as_dict() if gap is not None else None,
        objectives=judgement.objectives,
        stages={k: round(v, 3) for k, v in run.stages.items()},
        tables=run.tables or [],
        checks=run.checks or [],
        failures=[redact(f) for f in failures],
        integrity_error=redact(integrity) if integrity else None,
        error=redact(error) if error else None,
        backup={
            "id": manifest.id,
            "label": manifest.label,
            "created_at": manifest.created_at.isoformat(),
            "snapshot_at": snapshot_time(manifest).isoformat(),
            "database": manifest.database,
            "source": manifest.source if isinstance(manifest, BackupManifest) else None,
            "server_version": manifest.server_version,
            "pg_dump_version": manifest.pg_dump_version,
            "size": manifest.size,
            "dump_plain_size": dump.plain_size if dump is not None else None,
            "tables": len(manifest.tables),
            "rows": sum(manifest.tables.values()),
            "storage": ctx.storage.description,
        },
        scratch={
            "kind": scratch.kind if scratch else None,
            "target": scratch.description if scratch else None,
            "server_version": scratch.server_version if scratch else None,
            "kept": scratch.kept is not None if scratch else False,
            "removed": scratch.removed if scratch else True,
            "restore_mode": restored.plan.mode if restored else None,
            "roles_created": restored.roles_created if restored else [],
        },
        restore_record_id=restored.record_id if restored else None,
        point_in_time=pit.as_dict() if pit is not None else None,
        tool_version=__version__,
        server_version=scratch.server_version if scratch else None,
        host=socket.gethostname(),
    )
