"""The restore use case: authenticate the backup, plan and check the target, then restore -
streamed into pg_restore in one transaction, or spooled for ``pg_restore -j`` - count the
rows, and record the measured duration (``restores/<backup-id>/<id>.json``)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from drtool import __version__
from drtool.catalog.manifest import Manifest
from drtool.catalog.records.restores import RestoreRecord, write_restore_record
from drtool.errors import DatabaseError, DrtoolError, IntegrityError, OperationError
from drtool.ids import new_id
from drtool.log import get_logger, redact
from drtool.pg.conn import Target
from drtool.pg.restore.run import (
    Reload,
    list_file,
    psql_tool,
    reload_data,
    restore_file,
    restore_stream,
)
from drtool.pg.restore.script import restore_through_psql
from drtool.pg.restore.target import TargetSession, open_session
from drtool.pg.scratch import dsn_with_password
from drtool.pg.tools.run import pgpass_env
from drtool.services.context import Context
from drtool.services.keys import configured_identities
from drtool.services.restore.auth import (
    Authenticated,
    authenticate,
    backup_major,
    dump_tool,
    resolve_backup,
)
from drtool.services.restore.job import RestoreJob
from drtool.services.restore.parallel import (
    check_parallel_request,
    plan_parallel,
    restore_parallel,
)
from drtool.services.restore.plan import RestorePlan, RolePlan, plan_database
from drtool.services.restore.request import RestoreRequest, check_request, parse_to
from drtool.services.restore.spool import check_space, publish, spool_dir, spooled, write_spool
from drtool.storage.base import close_quietly

APPLICATION_NAME = "drtool-restore"

log = get_logger("restore")

__all__ = ["RestoreRequest", "RestoreResult", "restore_scratch", "run_restore"]


@dataclass(frozen=True)
class RestoreResult:
    """``id`` is the backup restored; ``tables`` the exact rows now in the target."""

    id: str
    target: str
    seconds: float
    tables: dict[str, int]
    stages: dict[str, float]
    dry_run: bool
    plan: RestorePlan
    roles_created: list[str] = field(default_factory=list)
    record_id: str | None = None
    # False when pg_restore's selection needed only the start of the dump and pulling stopped
    # there; every byte it read was still authenticated.
    read_whole_dump: bool = True
    # ``--until``: the base backup and what was replayed on it (services/stream/replay.py).
    point_in_time: dict[str, object] | None = None


def _write_record(ctx: Context, record: RestoreRecord) -> None:
    """The restore record feeds RTO reporting; failing to write it must not fail a restore."""
    try:
        write_restore_record(ctx.storage, record)
    except DrtoolError as exc:
        log.warning("could not write restore record %s: %s", record.id, exc.message)


def _check_counts(manifest: Manifest, plan: RestorePlan, counts: dict[str, int]) -> None:
    def differs(table: str, rows: int) -> bool:
        got = counts.get(table, -1)
        return got < rows if table in plan.count_at_least else got != rows

    wrong = {t: (counts.get(t), rows) for t, rows in plan.tables.items() if differs(t, rows)}
    if not wrong:
        return
    table, (got, expected) = next(iter(sorted(wrong.items())))
    more = f" ({len(wrong) - 1} more tables differ)" if len(wrong) > 1 else ""
    raise IntegrityError(
        f"restore of backup {manifest.id} into {plan.target}: restored {got} rows into {table}, "
        f"the manifest recorded {expected}{more}",
        hint="this should never happen; keep the target for inspection and report it",
    )


def _create_roles(session: TargetSession, roles: RolePlan, where: str) -> list[str]:
    if not roles.create:
        return []
    try:
        session.create_roles(roles.create, roles.memberships)
    except DatabaseError as exc:
        raise OperationError(
            f"could not create the roles the backup needs on {where} "
            f"({', '.join(roles.names)}): {exc.message}",
            hint="have an administrator create them, or restore with --no-owner (roles named "
            "by row-level security policies are still needed)",
        ) from exc
    log.info("created roles on %s: %s", where, ", ".join(roles.names))
    return roles.names


def _timed(chunks: Iterator[bytes], seconds: list[float]) -> Iterator[bytes]:
    """``chunks``, adding the time spent producing each one to ``seconds[0]``."""
    try:
        while True:
            t0 = time.monotonic()
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            finally:
                seconds[0] += time.monotonic() - t0
            yield chunk
    finally:
        close_quietly(chunks)


def _pg_restore(ctx: Context, job: RestoreJob, stages: dict[str, float]) -> bool:
    """Run the restore itself; returns whether pg_restore read the whole dump."""
    plan, target, tool = job.plan, job.target, job.tool
    if plan.mode == "parallel":
        restore_parallel(ctx, job, stages)
        return True
    options = job.options()
    progress = ctx.progress("restore", job.auth.dump.plain_size)
    base_env = {**os.environ, "PGAPPNAME": APPLICATION_NAME}
    with pgpass_env(target.password, base_env) as env:
        t0 = time.monotonic()
        if plan.mode == "script":
            pulled = [0.0]
            stream = _timed(job.auth.chunks(progress), pulled)
            psql = psql_tool(tool.major)
            psql_argv = [str(psql.path), "--no-psqlrc", "--quiet", "--no-password"]
            psql_argv += ["--set=ON_ERROR_STOP=1", f"--dbname={target.conninfo}", "--file=-"]
            restore_through_psql(
                options.script_argv(tool), psql_argv, env, stream, job.script_filter()
            )
            stages["fetch_decrypt"] = pulled[0]
            stages["restore"] = time.monotonic() - t0 - pulled[0]
            return True
        if plan.mode == "stream":
            pulled = [0.0]
            stream = _timed(job.auth.chunks(progress), pulled)
            complete = restore_stream(options.argv(tool, target.conninfo), env, stream)
            # The stream overlaps pg_restore: fetch_decrypt is the time spent pulling chunks,
            # restore the rest of the wall time (waiting for pg_restore and the server).
            stages["fetch_decrypt"] = pulled[0]
            stages["restore"] = time.monotonic() - t0 - pulled[0]
            return complete
        configured = ctx.config.restore.spool_dir
        directory = spool_dir(ctx.config.resolve(configured) if configured else None)
        auth = job.auth
        with spooled(ctx.storage, auth.dump, auth.identities, directory, progress) as path:
            stages["fetch_decrypt"] = time.monotonic() - t0
            t1 = time.monotonic()
            if plan.truncate:
                pairs = [(t.partition(".")[0], t.partition(".")[2]) for t in plan.truncate]
                psql = psql_tool(tool.major)
                reload = Reload(
                    tool, psql, target.conninfo, options.selection, pairs, plan.disable_triggers
                )
                reload_data(reload, env, path)
            else:
                restore_file(options.argv(tool, target.conninfo, path), env)
            stages["restore"] = time.monotonic() - t1
        return True


def _record_base(job: RestoreJob, record_id: str) -> dict[str, object]:
    """The restore record's fields known before the run."""
    req, plan = job.request, job.plan
    return {
        "id": record_id,
        "backup_id": job.manifest.id,
        "target": plan.target,
        "started_at": job.started_at,
        "mode": plan.mode,
        "jobs": plan.jobs,
        "selection": {
            "tables": [f"{s}.{t}" for s, t in job.selection.tables],
            "schema_only": req.schema_only,
            "data_only": req.data_only,
        },
        "force": req.force,
        "no_owner": req.no_owner,
        "no_privileges": req.no_privileges,
        "role_map": plan.role_map,
        "platform": plan.platform,
        "tool_version": __version__,
    }


def _execute(ctx: Context, job: RestoreJob, session: TargetSession) -> RestoreResult:
    """Carry out ``job``'s plan: roles, pg_restore, exact counts, the restore record."""
    req, plan, manifest = job.request, job.plan, job.manifest
    roles = job.details.roles
    record_id = new_id(ctx.clock())
    stages: dict[str, float] = {"prepare": time.monotonic() - job.started}
    base = _record_base(job, record_id)
    created: list[str] = []
    restored = False
    log.info(
        "restoring backup %s into %s: %s, %d tables, %d roles to create",
        manifest.id,
        plan.target,
        "one transaction"
        if plan.single_transaction
        else f"{plan.jobs} loaders"
        if plan.mode == "parallel"
        else f"pg_restore -j {plan.jobs}",
        len(plan.tables),
        len(roles.create),
    )
    try:
        created = _create_roles(session, roles, plan.target)
        complete = _pg_restore(ctx, job, stages)
        restored = True
        t0 = time.monotonic()
        counts = session.count_rows(list(plan.tables))
        stages["count"] = time.monotonic() - t0
        if not req.schema_only:
            _check_counts(manifest, plan, counts)
    except BaseException as exc:
        left = created if restored else session.drop_roles(created) if created else []
        if left and not restored:
            log.warning("roles created for the failed restore remain: %s", ", ".join(left))
        message = redact(exc.message if isinstance(exc, DrtoolError) else type(exc).__name__)
        failed = {"ok": False, "error": message, "roles_created": left, "stages": stages}
        seconds = time.monotonic() - job.started
        _write_record(ctx, RestoreRecord.model_validate({**base, **failed, "seconds": seconds}))
        raise
    seconds = round(time.monotonic() - job.started, 3)
    stages = {k: round(v, 3) for k, v in stages.items()}
    done = {
        "ok": True,
        "finished_at": ctx.clock(),
        "seconds": seconds,
        "stages": stages,
        "roles_created": created,
        "tables": counts,
    }
    _write_record(ctx, RestoreRecord.model_validate({**base, **done}))
    log.info("restore of %s into %s complete in %.1fs", manifest.id, plan.target, seconds)
    return RestoreResult(
        id=manifest.id,
        target=plan.target,
        seconds=seconds,
        tables=counts,
        stages=stages,
        dry_run=False,
        plan=plan,
        roles_created=created,
        record_id=record_id,
        read_whole_dump=complete,
    )


def _to_file(
    ctx: Context, req: RestoreRequest, auth: Authenticated, started: float
) -> RestoreResult:
    """The verified plain custom-format dump, for a manual pg_restore."""
    assert req.to_file is not None
    dest = req.to_file
    manifest = auth.manifest
    plan = RestorePlan(
        backup_id=manifest.id,
        target=str(dest),
        mode="file",
        single_transaction=False,
        jobs=1,
        stored_size=auth.dump.size,
        plain_size=auth.dump.plain_size,
        server_major=backup_major(manifest),
        tables=dict(manifest.tables),
    )
    check_space(dest.parent, auth.dump.plain_size, "--to-file")
    stages: dict[str, float] = {}
    if not req.dry_run:
        t0 = time.monotonic()
        progress = ctx.progress("restore", auth.dump.plain_size)
        part = write_spool(
            ctx.storage, auth.dump, auth.identities, dest.parent, progress, prefix=f".{dest.name}."
        )
        try:
            stages["fetch_decrypt"] = round(time.monotonic() - t0, 3)
            with pgpass_env(None) as env:
                list_file(dump_tool(manifest), env, part)
            publish(part, dest)
        finally:
            part.unlink(missing_ok=True)
        log.info("wrote the verified dump of backup %s to %s", manifest.id, dest)
    return RestoreResult(
        id=manifest.id,
        target=str(dest),
        seconds=round(time.monotonic() - started, 3),
        tables=dict(manifest.tables) if not req.dry_run else {},
        stages=stages,
        dry_run=req.dry_run,
        plan=plan,
    )


def run_restore(ctx: Context, req: RestoreRequest) -> RestoreResult:
    """``restore ID|latest``: nothing reaches the target before the backup is authenticated,
    and every refusal happens before the first change (docs/format.md, "Restore integrity").

    Into a database: one session to the target (``open_session``: the restore's lock, the
    target's facts, every check of the plan, then roles and counts), the plan decided once
    (``plan_database``), then executed as one ``RestoreJob``."""
    started = time.monotonic()
    started_at = ctx.clock()
    check_request(req)
    identities = configured_identities(ctx.config)
    auth = authenticate(ctx, resolve_backup(ctx, req.ref), identities)
    if auth.parallel:
        check_parallel_request(req, auth.manifest.id)
    if req.to_file is not None:
        return _to_file(ctx, req, auth, started)
    assert req.to_dsn is not None
    target = parse_to(req.to_dsn)
    with (
        open_session(target) as session,
        tempfile.TemporaryDirectory(prefix="drtool-restore-") as work,
    ):
        planner = plan_parallel if auth.parallel else plan_database
        plan, details = planner(req, auth, session, Path(work))
        if req.dry_run:
            seconds = round(time.monotonic() - started, 3)
            return RestoreResult(auth.manifest.id, plan.target, seconds, {}, {}, True, plan)
        job = RestoreJob(req, auth, target, plan, details, started, started_at)
        return _execute(ctx, job, session)


def restore_scratch(ctx: Context, backup_id: str, scratch: Target, owned: bool) -> RestoreResult:
    """Restore a backup whole into a scratch database (a drill's, or restore-user's
    ``--from-backup``), through the same session, plan and job as ``restore --to``;
    ``owned``: drtool's own throwaway cluster (every role the backup needs is created)."""
    request = RestoreRequest(ref=backup_id, to_dsn=dsn_with_password(scratch), scratch_owned=owned)
    return run_restore(ctx, request)
