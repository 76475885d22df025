"""Restoring the parallel format without a spool: ``pre-data`` through pg_restore in one
transaction, then N loaders each streaming table parts from storage into ``COPY FROM``
(authenticated chunk by chunk; every loader's rows committed together, or none), then
``post-data`` (indexes, constraints) with ``pg_restore -j N``."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

from drtool.catalog.catalog import POST_DATA_OBJECT
from drtool.catalog.manifest import BackupManifest, TablePart
from drtool.errors import UsageError
from drtool.log import get_logger
from drtool.pg.dump.sql_text import schema_facts
from drtool.pg.restore.copy_in import Loader, PartLoad, loader
from drtool.pg.restore.run import RestoreOptions, read_schema_script, restore_file, restore_stream
from drtool.pg.restore.target import TargetSession, require_major
from drtool.pg.tools.run import pgpass_env
from drtool.services.context import Context
from drtool.services.restore.auth import Authenticated, backup_major, dump_tool
from drtool.services.restore.job import RestoreJob
from drtool.services.restore.plan import (
    ObstaclesError,
    PlanDetails,
    RestorePlan,
    check_contents,
    check_ownership,
    plan_roles,
    read_dump_toc,
)
from drtool.services.restore.request import RestoreRequest
from drtool.services.restore.spool import spool_dir, spooled
from drtool.services.restore.toc import Obstacle, backup_platform, target_platform

log = get_logger("restore")

UNSUPPORTED_HINT = (
    "restore the whole backup into an empty database (then copy what you need), or take a "
    "single-stream backup (backup --jobs 1) for this kind of restore"
)


def _refuse(manifest_id: str, what: str) -> UsageError:
    return UsageError(
        f"backup {manifest_id} is in the parallel format: {what} is not supported for it; "
        "nothing was changed",
        hint=UNSUPPORTED_HINT,
    )


def check_parallel_request(req: RestoreRequest, manifest_id: str) -> None:
    """Options the parallel format does not support (exit 2, before anything is read)."""
    for flag, on in (
        ("--to-file", req.to_file is not None),
        ("--table", bool(req.tables)),
        ("--data-only", req.data_only),
        ("--force", req.force),
        ("--role-map", bool(req.role_map)),
    ):
        if on:
            raise _refuse(manifest_id, flag)


def plan_parallel(
    req: RestoreRequest, auth: Authenticated, session: TargetSession, workdir: Path
) -> tuple[RestorePlan, PlanDetails]:
    """The checks ``plan_database`` makes, for the parallel format: the target's version and
    emptiness, the roles the schema needs (from both schema objects' scripts), ownership;
    restoring into a managed platform's project (staging its tables) is refused."""
    manifest = auth.manifest
    assert isinstance(manifest, BackupManifest)
    check_parallel_request(req, manifest.id)
    state = session.state
    major = backup_major(manifest)
    if major is not None:
        require_major(state, major)
    toc = read_dump_toc(auth)
    into = target_platform(state, backup_platform(manifest.platform, toc))
    if into is not None:
        raise _refuse(manifest.id, f"restoring into a {into.title} project")
    tables = dict(sorted(manifest.tables.items()))
    replaced, _ = check_contents(state, session, req, list(tables))
    content = RestoreOptions(no_owner=req.no_owner, no_privileges=req.no_privileges)
    args = content.content_args()
    tool = dump_tool(manifest)
    with pgpass_env(None) as env:
        script = read_schema_script(tool, env, auth.chunks(), args)
        script += read_schema_script(tool, env, auth.object_chunks(POST_DATA_OBJECT), args)
    facts = schema_facts(script)
    obstacles: list[Obstacle] = []
    roles = plan_roles(auth, state, facts, req, obstacles)
    check_ownership(state, facts, req, obstacles)
    drop_auth = bool(facts.session_roles) and not state.superuser
    if drop_auth:
        raise _refuse(
            manifest.id,
            f"restoring as {state.user}, not a superuser, objects granted by other roles",
        )
    if obstacles:
        raise ObstaclesError(manifest.id, state.description, obstacles)
    to_create = [e for e in facts.extensions if e not in state.installed_extensions]
    stored = sum(o.size for o in manifest.objects)
    plain = sum(o.plain_size for o in manifest.objects)
    plan = RestorePlan(
        backup_id=manifest.id,
        target=state.description,
        mode="parallel",
        single_transaction=False,
        jobs=req.jobs,
        stored_size=stored,
        plain_size=plain,
        server_major=major,
        target_major=state.server_major,
        target_tables=state.user_tables,
        replaced=replaced,
        left_alone=len(state.user_tables) - len(replaced),
        tables=tables,
        roles_to_create=roles.names,
        roles_present=roles.present,
        extensions_to_create=to_create,
    )
    return plan, PlanDetails(roles=roles)


class _Loaders:
    """N loader threads taking the largest remaining part first. Each loads its parts in one
    transaction; all commit after every part loaded, or all roll back on the first failure,
    which is raised in the caller."""

    def __init__(self, job: RestoreJob, ctx: Context, parts: list[TablePart], jobs: int) -> None:
        self.job, self.ctx = job, ctx
        sizes = {o.name: o.size for o in job.manifest.objects}
        self.parts = sorted(parts, key=lambda p: -sizes.get(p.object, 0))
        self.lock = threading.Lock()
        self.failed = threading.Event()
        self.error: BaseException | None = None
        count = max(1, min(jobs, len(self.parts)))
        self.barrier = threading.Barrier(count)
        self.threads = [
            threading.Thread(target=self._work, name=f"restore-loader-{i}", daemon=True)
            for i in range(count)
        ]
        plain = {o.name: o.plain_size for o in job.manifest.objects}
        self.progress = ctx.progress("restore", sum(plain.get(p.object, 0) for p in parts))
        manifest = job.manifest
        assert isinstance(manifest, BackupManifest)
        self.settings = dict(manifest.copy_settings)

    def run(self) -> None:
        for thread in self.threads:
            thread.start()
        for thread in self.threads:
            thread.join()
        if self.error is not None:
            raise self.error

    def _next(self) -> TablePart | None:
        with self.lock:
            if self.failed.is_set() or not self.parts:
                return None
            return self.parts.pop(0)

    def _fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = exc
        self.failed.set()
        self.barrier.abort()

    def _work(self) -> None:
        auth = self.job.auth
        try:
            with loader(self.job.target, self.settings, "drtool-restore") as conn:
                self._load_all(conn, auth)
        except BaseException as exc:
            self._fail(exc)

    def _load_all(self, conn: Loader, auth: Authenticated) -> None:
        while (part := self._next()) is not None:
            load = PartLoad(
                part.object,
                part.schema_name,
                part.table_name,
                tuple(part.columns),
                part.header_size,
            )
            conn.load(load, auth.object_chunks(part.object, self.progress))
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            conn.finish(commit=False)
            return
        conn.finish(commit=not self.failed.is_set())


def restore_parallel(ctx: Context, job: RestoreJob, stages: dict[str, float]) -> None:
    """pre-data, the parts, post-data (see the module docstring)."""
    plan, target, tool, auth = job.plan, job.target, job.tool, job.auth
    manifest = job.manifest
    assert isinstance(manifest, BackupManifest)
    schema_only = job.request.schema_only
    single = replace(job.options(), jobs=1, use_list=None)
    base_env = {**os.environ, "PGAPPNAME": "drtool-restore"}
    with pgpass_env(target.password, base_env) as env:
        t0 = time.monotonic()
        restore_stream(single.argv(tool, target.conninfo), env, auth.chunks())
        stages["pre_data"] = time.monotonic() - t0
        if not schema_only:
            t1 = time.monotonic()
            _Loaders(job, ctx, list(manifest.parts), plan.jobs).run()
            stages["data"] = time.monotonic() - t1
        t2 = time.monotonic()
        post = auth.manifest.object(POST_DATA_OBJECT).stored()
        if plan.jobs > 1:
            configured = ctx.config.restore.spool_dir
            directory = spool_dir(ctx.config.resolve(configured) if configured else None)
            with spooled(ctx.storage, post, auth.identities, directory) as path:
                options = replace(job.options(), jobs=plan.jobs, use_list=None)
                restore_file(options.argv(tool, target.conninfo, path), env)
        else:
            restore_stream(
                single.argv(tool, target.conninfo), env, auth.object_chunks(POST_DATA_OBJECT)
            )
        stages["post_data"] = time.monotonic() - t2
    log.info("restored %d data objects of backup %s", len(manifest.parts), manifest.id)
