"""Restore planning: check the request, authenticate the backup before trusting it, and check
the target (version, emptiness, roles, extensions) so that a refused restore changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from drtool.catalog.manifest import BackupManifest, Manifest
from drtool.errors import (
    OperationError,
    RefusedError,
    UsageError,
)
from drtool.pg.dump.sql_text import (
    Membership,
    RoleDefinition,
    SchemaFacts,
    parse_globals,
    schema_facts,
)
from drtool.pg.platform.detect import PlatformFacts
from drtool.pg.restore.pg_restore import Toc
from drtool.pg.restore.run import RestoreOptions, Selection, read_schema_script, read_toc
from drtool.pg.restore.target import TargetSession, TargetState, require_major
from drtool.pg.tools.run import pgpass_env
from drtool.services.restore.auth import Authenticated, backup_major, dump_tool
from drtool.services.restore.request import (
    RestoreRequest,
    parse_role_map,
)
from drtool.services.restore.toc import (
    Obstacle,
    TocOptions,
    TocPlan,
    backup_platform,
    list_file_text,
    plan_toc,
    target_platform,
)

SHOWN_NAMES = 5


@dataclass(frozen=True)
class RolePlan:
    create: list[RoleDefinition] = field(default_factory=list)
    memberships: list[Membership] = field(default_factory=list)
    present: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.create]


@dataclass(frozen=True)
class RestorePlan:
    """Everything a restore will do, decided before it changes anything (``--dry-run``)."""

    backup_id: str
    target: str
    # "stream" (one transaction), "spool" (pg_restore -j / psql reload), "script", "file",
    # "parallel" (the parallel format: pre-data, N COPY loaders, post-data)
    mode: str
    single_transaction: bool
    jobs: int
    stored_size: int
    plain_size: int
    server_major: int | None
    target_major: int | None = None
    target_tables: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # existing tables the restore replaces
    left_alone: int = 0  # existing user tables not in the backup
    tables: dict[str, int] = field(default_factory=dict)  # restored tables, manifest rows
    truncate: list[str] = field(default_factory=list)  # --data-only --force
    disable_triggers: bool = False  # --data-only as a superuser: load in any table order
    roles_to_create: list[str] = field(default_factory=list)
    roles_present: list[str] = field(default_factory=list)
    extensions_to_create: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    platform: str | None = None  # restoring into a project of this platform
    skipped: dict[str, list[str]] = field(default_factory=dict)  # TOC entries left out, by why
    staged: list[str] = field(default_factory=list)  # platform tables loaded via staging
    role_map: dict[str, str] = field(default_factory=dict)
    # Tables that held rows before (--force into a project): at least the manifest's rows.
    count_at_least: list[str] = field(default_factory=list)


class ObstaclesError(OperationError):
    """The restore would fail: every obstacle known beforehand, each with its resolution."""

    def __init__(self, backup_id: str, target: str, obstacles: list[Obstacle]) -> None:
        self.obstacles = obstacles
        lines = [f"- {o.text()}" for o in obstacles]
        super().__init__(
            f"restore of backup {backup_id} into {target} cannot go ahead; "
            f"{len(obstacles)} obstacle(s), nothing was changed:\n" + "\n".join(lines),
            hint="resolve each as listed; --dry-run checks again without changing anything",
        )


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN_NAMES])
    more = len(items) - SHOWN_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def selected_tables(
    manifest: Manifest, selection: Selection, toc: Toc | None = None
) -> dict[str, int]:
    """Manifest tables (with their rows) that the selection restores; unknown names exit 2.
    Names are compared whole (``schema.table``), so dots inside names do not confuse them.
    The manifest lists the tables holding rows: a partitioned table (a TABLE entry of the
    dump's ``toc`` that the manifest lacks) is named as such, with the dump's partitions."""
    for schema, table in selection.tables:
        name = f"{schema}.{table}"
        if name in manifest.tables:
            continue
        entries = toc.entries if toc is not None else []
        attached = [e for e in entries if e.kind == "TABLE ATTACH"]
        if attached and any(
            e.kind == "TABLE" and (e.schema, e.name) == (schema, table) for e in entries
        ):
            partitions = sorted(f"{e.schema}.{e.name}" for e in attached)
            raise UsageError(
                f"--table {name}: a partitioned table; its rows are in its partitions, and "
                "pg_restore -t restores a partition's definition without attaching it "
                f"(partitions in backup {manifest.id}: {_names(partitions)})",
                hint="restore the whole backup into a scratch database and copy the rows, or "
                "reload the rows of its partitions into a database that has the partitioned "
                "table: --table PARTITION --data-only --force, once per partition",
            )
        raise UsageError(
            f"--table {name}: backup {manifest.id} has no such table",
            hint="`drtool show ID` lists the backup's tables",
        )
    covered = selection.names()
    return {
        name: rows
        for name, rows in sorted(manifest.tables.items())
        if not selection.tables or name in covered
    }


def check_contents(
    state: TargetState, session: TargetSession, req: RestoreRequest, tables: list[str]
) -> tuple[list[str], list[str]]:
    """Refuse (exit 5) to overwrite user tables without --force; for --data-only the tables must
    exist and be empty. Returns (tables replaced, tables to truncate)."""
    if req.data_only:
        states = session.table_states(tables)
        missing = [t for t, s in states.items() if s is None]
        if missing:
            raise RefusedError(
                f"--data-only needs the tables to exist on {state.description}; missing: "
                f"{_names(missing)}",
                hint="restore the schema first (--schema-only), or restore without --data-only",
            )
        full = [t for t, s in states.items() if s]
        if full and not req.force:
            raise RefusedError(
                f"--data-only needs empty tables; {len(full)} hold rows on {state.description}: "
                f"{_names(full)}",
                hint="pass --force to empty them and reload them in one transaction",
            )
        return [], (tables if req.force else [])
    if state.user_tables and not req.force:
        raise RefusedError(
            f"target {state.description} is not empty: {len(state.user_tables)} user tables "
            f"({_names(state.user_tables)})",
            hint="restore into an empty database, or pass --force to replace the objects in the "
            "backup (objects not in the backup are left alone)",
        )
    return [t for t in state.user_tables if t in tables], []


def _creatable(defn: RoleDefinition, state: TargetState, scratch_owned: bool) -> bool:
    if scratch_owned or state.superuser:
        return True
    # CREATEROLE may not grant SUPERUSER, REPLICATION or BYPASSRLS (PostgreSQL 15).
    special = {"SUPERUSER", "REPLICATION", "BYPASSRLS"}
    return state.can_create_roles and not special & set(defn.attributes)


def _for_scratch(defn: RoleDefinition) -> RoleDefinition:
    """A role in drtool's own drill cluster: NOLOGIN (nobody signs in there)."""
    attrs = [a for a in defn.attributes if a not in ("LOGIN", "NOLOGIN")]
    return RoleDefinition(defn.name, [*attrs, "NOLOGIN"], list(defn.settings))


def plan_roles(
    auth: Authenticated,
    state: TargetState,
    facts: SchemaFacts,
    req: RestoreRequest,
    obstacles: list[Obstacle],
) -> RolePlan:
    """Roles the restore needs that the target lacks, created from the backup's globals
    (in drtool's own drill cluster: every one, bare where the globals lack it); those that
    cannot be created are obstacles."""
    if req.data_only:
        needed: set[str] = set()
    else:
        needed = set(facts.policy_roles)
        needed |= set() if req.no_owner else facts.owners | facts.session_roles
        needed |= set() if req.no_privileges else facts.grantees
    missing = sorted(needed - state.roles)
    defs = parse_globals(auth.globals_sql or "")
    create: list[RoleDefinition] = []
    impossible: list[str] = []
    for name in missing:
        defn = defs.roles.get(name)
        if defn is None and req.scratch_owned:
            defn = RoleDefinition(name)
        if defn is None or not _creatable(defn, state, req.scratch_owned):
            impossible.append(name)
            continue
        create.append(_for_scratch(defn) if req.scratch_owned else defn)
    if impossible:
        globals_note = "" if auth.globals_sql is not None else " (this backup has no globals)"
        lacking = [n for n in impossible if n not in defs.roles]
        why = (
            f"{state.user} may not create them"
            if not lacking
            else f"the backup's globals do not define {_names(lacking)}{globals_note}"
        )
        only_owners = set(impossible) - facts.policy_roles - facts.grantees
        obstacles.append(
            Obstacle(
                f"the backup needs roles that {state.description} lacks: {_names(impossible)}; "
                + why,
                "create them on the target first, or --role-map ROLE=EXISTING_ROLE, or "
                + ("--no-owner" if only_owners == set(impossible) else "--no-owner --no-privileges")
                + " (roles named by row-level security policies are still needed)",
            )
        )
    names = {r.name for r in create}
    touching = [m for m in defs.memberships if m.role in names or m.member in names]
    granted = [m for m in touching if {m.role, m.member} <= (state.roles | names)]
    return RolePlan(create, granted, sorted(needed & state.roles))


def check_ownership(
    state: TargetState, facts: SchemaFacts, req: RestoreRequest, obstacles: list[Obstacle]
) -> None:
    """A non-superuser may give an object only to a role it is a member of (ALTER ... OWNER
    TO), and switch to a grantor only as a superuser (SET SESSION AUTHORIZATION is dropped
    from the script then: the grants are made by the restoring user)."""
    if state.superuser or req.data_only or req.no_owner:
        return
    for role in sorted(facts.owners):
        if role in state.roles and not state.may_act_as(role):
            obstacles.append(
                Obstacle(
                    f"objects in the backup are owned by {role}, and {state.user} is not a "
                    f"member of {role} (ALTER ... OWNER TO {role} would fail)",
                    f"--no-owner (they end up owned by {state.user}), or --role-map "
                    f"{role}={state.user}, or restore as a superuser",
                )
            )


def read_script(auth: Authenticated, args: list[str]) -> str:
    """The schema script the restore would run, from the start of the authenticated dump."""
    with pgpass_env(None) as env:
        return read_schema_script(dump_tool(auth.manifest), env, auth.chunks(), args)


def read_dump_toc(auth: Authenticated) -> Toc:
    with pgpass_env(None) as env:
        return read_toc(dump_tool(auth.manifest), env, auth.chunks())


@dataclass(frozen=True)
class PlanDetails:
    """What execution needs beyond the plan shown to the operator."""

    roles: RolePlan
    list_file: Path | None = None
    staged: tuple[str, ...] = ()
    role_map: dict[str, str] = field(default_factory=dict)
    drop_session_authorization: bool = False
    keep_existing_rows: bool = False

    @property
    def through_psql(self) -> bool:
        return bool(self.staged or self.role_map or self.drop_session_authorization)


def _platform_versions(
    manifest: Manifest, session: TargetSession, plan: TocPlan, obstacles: list[Obstacle]
) -> list[str]:
    """The project's platform against the backup's: a column the backup has rows for that the
    project's table lacks is an obstacle; other version differences are warnings."""
    backup = manifest if isinstance(manifest, BackupManifest) else None
    source = PlatformFacts.from_manifest(
        backup.platform if backup else None, backup.platform_details if backup else None
    )
    here = session.platform()
    if source is None or here is None:
        return []
    warnings = [
        f"{component} schema version differs: backup {version}, project "
        f"{here.schema_versions.get(component)}"
        for component, version in source.schema_versions.items()
        if version is not None and here.schema_versions.get(component) not in (None, version)
    ]
    for table in plan.staged:
        theirs = here.data_tables.get(table)
        lacking = [c for c in source.data_tables.get(table, []) if theirs and c not in theirs]
        if lacking:
            obstacles.append(
                Obstacle(
                    f"the project's {table} lacks columns the backup has values for: "
                    f"{_names(lacking)} ("
                    + "; ".join(warnings or ["older platform version"])
                    + ")",
                    "restore into a project at the backup's platform version or newer",
                )
            )
    return warnings


def _platform_rows(
    session: TargetSession, plan: TocPlan, req: RestoreRequest, obstacles: list[Obstacle]
) -> list[str]:
    """A fresh project's platform tables must exist; rows already there are kept only with
    --force (ON CONFLICT DO NOTHING). Returns the tables that already hold rows."""
    if not plan.staged:
        return []
    states = session.table_states(plan.staged)
    missing = [t for t, s in states.items() if s is None]
    if missing:
        obstacles.append(
            Obstacle(
                f"the target project lacks platform tables the backup has rows for: "
                f"{_names(missing)} (another platform version?)",
                "restore into a project of the same platform version, or upgrade it first",
            )
        )
    full = [t for t, s in states.items() if s]
    if full and not req.force:
        obstacles.append(
            Obstacle(
                f"the target project already has rows in {_names(full)}",
                "restore into a fresh project, or --force (rows already there are kept)",
            )
        )
    return full


def plan_database(
    req: RestoreRequest, auth: Authenticated, session: TargetSession, workdir: Path
) -> tuple[RestorePlan, PlanDetails]:
    """Every check a restore into a database makes before its first change, answered by the
    restore's one ``session`` (no other connection); every obstacle found is reported at once
    (ObstaclesError), for --dry-run and the real run alike. ``workdir`` keeps the list file."""
    manifest = auth.manifest
    selection = req.selection()
    state = session.state
    major = backup_major(manifest)
    if major is not None:
        require_major(state, major)
    mapping = parse_role_map(req.role_map)
    toc = read_dump_toc(auth)
    tables = selected_tables(manifest, selection, toc)
    backup = manifest if isinstance(manifest, BackupManifest) else None
    excluded = backup.excluded_table_data if backup else {}
    if req.data_only:
        tables = {t: n for t, n in tables.items() if t not in excluded}
    source = backup_platform(backup.platform if backup else None, toc)
    into = target_platform(state, source)
    if into is not None:
        # "Non-empty" means the application's schemas have tables.
        app_tables = [t for t in state.user_tables if not into.manages(t.partition(".")[0])]
        state = replace(state, user_tables=app_tables)
    replaced, truncate = check_contents(state, session, req, list(tables))
    absent = sorted({s for s, _ in selection.tables} - state.schemas)
    if absent:
        raise OperationError(
            f"--table restores tables into existing schemas; {state.description} has no schema "
            f"{_names(absent)}",
            hint="create the schema first, or restore the whole backup (without --table)",
        )
    opts = TocOptions(
        no_owner=req.no_owner,
        no_privileges=req.no_privileges,
        force=req.force,
        data_only=req.data_only,
        schema_only=req.schema_only,
        role_map=tuple(mapping.items()),
        scratch_owned=req.scratch_owned,
        tables=selection.tables,
    )
    toc_plan = plan_toc(toc, state, opts, source)
    obstacles = list(toc_plan.obstacles)
    list_file: Path | None = None
    if toc_plan.filtered:
        list_file = workdir / "restore.list"
        list_file.write_text(list_file_text(toc_plan.keep), encoding="utf-8")
    content = RestoreOptions(
        selection, no_owner=req.no_owner, no_privileges=req.no_privileges, use_list=list_file
    )
    script = read_script(auth, _script_args(content))
    facts = schema_facts(script).mapped(mapping)
    roles = plan_roles(auth, state, facts, req, obstacles)
    check_ownership(state, facts, req, obstacles)
    version_notes: list[str] = []
    at_least: list[str] = []
    if into is not None:
        # The platform's tables come back only where the plan loads their rows.
        tables = {
            t: n
            for t, n in tables.items()
            if not into.manages(t.partition(".")[0]) or t in toc_plan.staged
        }
    if into is not None and not req.schema_only:
        at_least = _platform_rows(session, toc_plan, req, obstacles)
        version_notes = _platform_versions(manifest, session, toc_plan, obstacles)
    extensions = [] if req.data_only or req.tables else facts.extensions
    to_create = [e for e in extensions if e not in state.installed_extensions]
    if obstacles:
        raise ObstaclesError(manifest.id, state.description, obstacles)
    drop_auth = bool(facts.session_roles) and not state.superuser
    details = PlanDetails(
        roles=roles,
        list_file=list_file,
        staged=tuple(toc_plan.staged) if not req.schema_only else (),
        role_map=mapping,
        drop_session_authorization=drop_auth,
        keep_existing_rows=req.force,
    )
    spool = (req.jobs > 1 or bool(truncate)) and not details.through_psql
    warnings: list[str] = []
    asked = {f"{s}.{t}" for s, t in selection.tables}
    if asked and set(tables) - asked:
        warnings.append(
            "pg_restore matches every --table name in every schema given, so this also "
            f"restores {_names(sorted(set(tables) - asked))}"
        )
    if selection.tables and not req.data_only:
        warnings.append(
            "--table restores each table's definition and rows only (pg_restore -t): not its "
            "indexes, constraints, triggers or policies"
        )
    if req.data_only and not state.superuser:
        warnings.append(
            f"{state.user} is not a superuser: triggers stay enabled, so foreign keys between "
            "the tables may fail the load (pg_restore --disable-triggers needs a superuser)"
        )
    if truncate and req.jobs > 1:
        warnings.append("--jobs is ignored: --data-only --force reloads in one transaction")
    if details.through_psql and req.jobs > 1:
        warnings.append(
            "--jobs is ignored: this restore rewrites the script on its way to psql "
            "(role map, platform tables or grants by other grantors), in one transaction"
        )
    if into is not None:
        warnings.append(
            f"restoring into a {into.title} project: the platform's own objects are left as "
            f"the project has them ({sum(len(v) for v in toc_plan.skipped.values())} dump "
            f"entries); rows of {_names(toc_plan.staged) or 'no platform table'} are loaded "
            "into its tables"
        )
    warnings += version_notes
    mode = "script" if details.through_psql else ("spool" if spool else "stream")
    plan = RestorePlan(
        backup_id=manifest.id,
        target=state.description,
        mode=mode,
        single_transaction=mode != "spool" or bool(truncate),
        jobs=1 if truncate or mode == "script" else req.jobs,
        stored_size=auth.dump.size,
        plain_size=auth.dump.plain_size,
        server_major=major,
        target_major=state.server_major,
        target_tables=state.user_tables,
        replaced=replaced,
        left_alone=len(state.user_tables) - len(replaced),
        tables=tables,
        truncate=truncate,
        disable_triggers=req.data_only and state.superuser,
        roles_to_create=roles.names,
        roles_present=roles.present,
        extensions_to_create=to_create,
        warnings=warnings,
        platform=into.name if into is not None else None,
        skipped={k: v for k, v in toc_plan.skipped.items() if v},
        staged=list(details.staged),
        role_map=mapping,
        count_at_least=at_least,
    )
    return plan, details


def _script_args(content: RestoreOptions) -> list[str]:
    """Arguments for reading the schema script exactly as the restore will run it."""
    return [a for a in content.content_args() if a not in ("--schema-only", "--data-only")]
