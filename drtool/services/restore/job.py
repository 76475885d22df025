"""One restore into a database as a value: the request, the authenticated backup, the target
and the plan decided for them, carried whole from planning through execution (instead of
the same bundle of parameters passed from function to function)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drtool.catalog.manifest import Manifest
from drtool.pg.conn import Target
from drtool.pg.restore.run import RestoreOptions, Selection
from drtool.pg.restore.script import ScriptFilter
from drtool.pg.tools.find import Tool
from drtool.services.restore.auth import Authenticated, dump_tool
from drtool.services.restore.plan import PlanDetails, RestorePlan
from drtool.services.restore.request import RestoreRequest


@dataclass(frozen=True)
class RestoreJob:
    """A planned restore: what ``plan_database`` decided for ``request`` on ``target``."""

    request: RestoreRequest
    auth: Authenticated  # the backup's manifest, dump, globals; how to read the dump
    target: Target  # where pg_restore and psql connect (conninfo, password)
    plan: RestorePlan  # what the operator is shown (``--dry-run``) and the record keeps
    details: PlanDetails  # what execution needs beyond it (roles, list file, script filter)
    started: float  # time.monotonic() when the request arrived
    started_at: datetime

    @property
    def manifest(self) -> Manifest:
        return self.auth.manifest

    @property
    def selection(self) -> Selection:
        return self.request.selection()

    @property
    def tool(self) -> Tool:
        """pg_restore for the dump's major."""
        return dump_tool(self.manifest)

    def options(self) -> RestoreOptions:
        """pg_restore's options for the run: the selection, clean, ownership, jobs, list."""
        req = self.request
        return RestoreOptions(
            self.selection,
            clean=req.force and not req.data_only,
            no_owner=req.no_owner,
            no_privileges=req.no_privileges,
            jobs=self.plan.jobs,
            disable_triggers=self.plan.disable_triggers,
            use_list=self.details.list_file,
        )

    def script_filter(self) -> ScriptFilter:
        """How the script mode rewrites pg_restore's SQL on its way to psql."""
        details = self.details
        return ScriptFilter(
            role_map=details.role_map,
            drop_session_authorization=details.drop_session_authorization,
            stage=frozenset(details.staged),
            insert_order=details.staged,
            keep_existing=details.keep_existing_rows,
        )
