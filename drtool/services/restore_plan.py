"""Restore planning: check the request, authenticate the backup before trusting it, and check
the target (version, emptiness, roles, extensions) so that a refused restore changes nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from drtool.catalog.manifest import Manifest
from drtool.crypto.keys import Identity
from drtool.errors import (
    OperationError,
    RefusedError,
    UsageError,
)
from drtool.pg.conn import Target, parse_target
from drtool.pg.dump_sql import Membership, RoleDefinition, parse_globals, schema_facts
from drtool.pg.process import pgpass_env
from drtool.pg.restore_run import Selection, read_schema_script
from drtool.pg.target import (
    TargetState,
    existing_roles,
    inspect_target,
    require_major,
    table_states,
)
from drtool.pipeline.store import load
from drtool.services.context import Context
from drtool.services.restore_auth import Authenticated, backup_major, dump_tool

SHOWN_NAMES = 5
_IDENT = re.compile(r"^[^.\s]+$")


@dataclass(frozen=True)
class RestoreRequest:
    """``restore ID|latest (--to DSN | --to-file PATH) ...`` as the service receives it."""

    ref: str
    to_dsn: str | None = None
    to_file: Path | None = None
    jobs: int = 1
    tables: tuple[str, ...] = ()
    schema_only: bool = False
    data_only: bool = False
    force: bool = False
    no_owner: bool = False
    dry_run: bool = False


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
    mode: str  # "stream" (one transaction), "spool" (pg_restore -j / psql reload), "file"
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


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN_NAMES])
    more = len(items) - SHOWN_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def parse_table(text: str) -> tuple[str, str]:
    """``schema.table`` or ``table`` (schema ``public``)."""
    schema, dot, table = text.partition(".")
    if not dot:
        schema, table = "public", text
    if not (_IDENT.match(schema) and _IDENT.match(table)):
        raise UsageError(f"--table {text!r}: expected schema.table or table")
    return schema, table


def check_request(req: RestoreRequest) -> Selection:
    """Option combinations; nothing has been read yet (exit 2)."""
    if (req.to_dsn is None) == (req.to_file is None):
        raise UsageError("restore needs exactly one of --to DSN or --to-file PATH")
    if req.schema_only and req.data_only:
        raise UsageError("--schema-only and --data-only exclude each other")
    if req.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if req.to_file is not None:
        extra = [
            flag
            for flag, on in (
                ("--table", bool(req.tables)),
                ("--schema-only", req.schema_only),
                ("--data-only", req.data_only),
                ("--force", req.force),
                ("--no-owner", req.no_owner),
                ("--jobs", req.jobs != 1),
            )
            if on
        ]
        if extra:
            raise UsageError(
                f"--to-file writes the whole dump; {', '.join(extra)} apply to --to only",
                hint="pass those options to pg_restore when you restore the file",
            )
        if req.to_file.exists():
            raise UsageError(f"{req.to_file} already exists; refusing to overwrite it")
        if not req.to_file.parent.is_dir():
            raise UsageError(f"{req.to_file.parent} is not a directory")
    pairs = tuple(dict.fromkeys(parse_table(t) for t in req.tables))
    return Selection(pairs, req.schema_only, req.data_only)


def parse_to(dsn: str) -> Target:
    try:
        return parse_target(dsn)
    except UsageError:
        raise UsageError("--to is not a valid PostgreSQL connection string") from None


def selected_tables(manifest: Manifest, selection: Selection) -> dict[str, int]:
    """Manifest tables (with their rows) that the selection restores; unknown names exit 2."""
    known = {name: name.partition(".") for name in manifest.tables}
    for schema, table in selection.tables:
        if f"{schema}.{table}" not in known:
            raise UsageError(
                f"--table {schema}.{table}: backup {manifest.id} has no such table",
                hint="`drtool show ID` lists the backup's tables",
            )
    return {
        name: rows
        for name, rows in sorted(manifest.tables.items())
        if selection.covers(known[name][0], known[name][2])
    }


def check_contents(
    state: TargetState, target: Target, req: RestoreRequest, tables: list[str]
) -> tuple[list[str], list[str]]:
    """Refuse (exit 5) to overwrite user tables without --force; for --data-only the tables must
    exist and be empty. Returns (tables replaced, tables to truncate)."""
    if req.data_only:
        states = table_states(target, tables)
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


def plan_roles(
    auth: Authenticated, state: TargetState, target: Target, script: str, req: RestoreRequest
) -> tuple[RolePlan, list[str]]:
    """Roles the restore needs that the target lacks, created from the backup's globals; exit 1
    naming them if that is impossible. Returns the plan and the extensions the script creates."""
    facts = schema_facts(script)
    needed = set() if req.data_only else facts.roles(with_owners_and_grants=not req.no_owner)
    present = existing_roles(target, needed)
    missing = sorted(needed - present)
    defs = parse_globals(auth.globals_sql or "")
    create = [
        defs.roles[name]
        for name in missing
        if name in defs.roles and not defs.roles[name].superuser and name != state.user
    ]
    names = {r.name for r in create}
    impossible = [name for name in missing if name not in names]
    globals_note = "" if auth.globals_sql is not None else " (this backup has no globals)"
    if impossible:
        raise OperationError(
            f"the backup needs roles that {state.description} lacks and drtool cannot create "
            f"from the backup's globals{globals_note}: {_names(impossible)}",
            hint="create them on the target first, or restore with --no-owner (skips ownership "
            "and grants; roles named by row-level security policies are still needed)",
        )
    if create and not state.can_create_roles:
        raise OperationError(
            f"the backup needs roles that {state.description} lacks: {_names(sorted(names))}; "
            f"{state.user} may not create roles (needs CREATEROLE)",
            hint="have an administrator create them (the backup's globals define them), or "
            "restore with --no-owner (roles named by row-level security policies are still "
            "needed)",
        )
    touching = [m for m in defs.memberships if m.role in names or m.member in names]
    others = existing_roles(target, {m.role for m in touching} | {m.member for m in touching})
    granted = [m for m in touching if {m.role, m.member} <= (others | names)]
    plan = RolePlan(create, granted, sorted(present))
    return plan, ([] if req.data_only or req.tables else facts.extensions)


def check_extensions(state: TargetState, extensions: list[str]) -> list[str]:
    """Extensions the dump creates must be available on the target (exit 1, before starting);
    returns those the restore will create."""
    missing = [e for e in extensions if e not in state.available_extensions]
    if missing:
        raise OperationError(
            f"the backup uses extensions that {state.description} does not provide: "
            f"{_names(missing)}",
            hint="install them on the target server first (nothing was changed)",
        )
    return [e for e in extensions if e not in state.installed_extensions]


def read_script(
    ctx: Context, auth: Authenticated, identities: list[Identity], selection: Selection
) -> str:
    """The schema script of the selection, from the start of the authenticated dump stream."""
    with pgpass_env(None) as env:
        return read_schema_script(
            dump_tool(auth.manifest),
            env,
            load(ctx.storage, auth.dump, identities),
            selection.filter_args(),
        )


def plan_database(
    ctx: Context,
    req: RestoreRequest,
    selection: Selection,
    auth: Authenticated,
    identities: list[Identity],
    target: Target,
) -> tuple[RestorePlan, RolePlan]:
    """Every check a restore into a database makes before its first change."""
    manifest = auth.manifest
    state = inspect_target(target)
    major = backup_major(manifest)
    if major is not None:
        require_major(state, major)
    tables = selected_tables(manifest, selection)
    excluded = (manifest.model_extra or {}).get("excluded_table_data") or {}
    if req.data_only:
        tables = {t: n for t, n in tables.items() if t not in excluded}
    replaced, truncate = check_contents(state, target, req, list(tables))
    absent = sorted({s for s, _ in selection.tables} - state.schemas)
    if absent:
        raise OperationError(
            f"--table restores tables into existing schemas; {state.description} has no schema "
            f"{_names(absent)}",
            hint="create the schema first, or restore the whole backup (without --table)",
        )
    script = read_script(ctx, auth, identities, selection)
    roles, extensions = plan_roles(auth, state, target, script, req)
    to_create = check_extensions(state, extensions)
    spool = req.jobs > 1 or bool(truncate)
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
    return (
        RestorePlan(
            backup_id=manifest.id,
            target=state.description,
            mode="spool" if spool else "stream",
            single_transaction=req.jobs == 1 or bool(truncate),
            jobs=1 if truncate else req.jobs,
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
        ),
        roles,
    )
