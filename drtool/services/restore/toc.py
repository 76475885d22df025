"""What a restore will run, decided over the dump's table of contents (``pg_restore --list``)
and the target's facts, before anything changes: entries left out (a managed platform's own
objects in a fresh project, comments on extensions the restoring user does not own), platform
tables whose rows are loaded into the target's existing tables, and every obstacle the real
run would meet, each with what resolves it (SPEC "Managed PostgreSQL")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from drtool.pg.restore.pg_restore import Toc, TocEntry
from drtool.pg.restore.target import TargetState
from drtool.platforms import PLATFORMS, Platform, identify, platform_named

SHOWN = 5
# Kinds an application adds to a platform's tables (a trigger on auth.users, policies on
# storage.objects): restored into a fresh project when the project does not have them.
_APP_KINDS_IN_MANAGED = frozenset({"TRIGGER", "POLICY"})
_COMMENTLIKE = frozenset({"COMMENT", "ACL", "SECURITY LABEL"})
# What pg_restore --table selects (relations by name, and their data).
_SELECTABLE = frozenset(
    {
        "TABLE",
        "TABLE DATA",
        "VIEW",
        "MATERIALIZED VIEW",
        "SEQUENCE",
        "SEQUENCE SET",
        "FOREIGN TABLE",
    }
)
# Kinds the target's objects are compared under (TOC kind -> the kind in TargetState.objects).
_COMPARED = {
    "TABLE": "TABLE",
    "VIEW": "VIEW",
    "MATERIALIZED VIEW": "MATERIALIZED VIEW",
    "SEQUENCE": "SEQUENCE",
    "FOREIGN TABLE": "FOREIGN TABLE",
    "INDEX": "INDEX",
    "FUNCTION": "FUNCTION",
    "PROCEDURE": "PROCEDURE",
    "AGGREGATE": "AGGREGATE",
    "TYPE": "TYPE",
    "DOMAIN": "TYPE",
    "TRIGGER": "TRIGGER",
    "POLICY": "POLICY",
    "CONSTRAINT": "CONSTRAINT",
    "FK CONSTRAINT": "CONSTRAINT",
}


@dataclass(frozen=True)
class Obstacle:
    """Something the real restore would fail on, and the flag or step that resolves it."""

    problem: str
    resolve: str

    def text(self) -> str:
        return f"{self.problem} (resolve: {self.resolve})"


@dataclass(frozen=True)
class TocOptions:
    no_owner: bool = False
    no_privileges: bool = False
    force: bool = False
    data_only: bool = False
    schema_only: bool = False
    role_map: tuple[tuple[str, str], ...] = ()
    scratch_owned: bool = False  # drtool's own throwaway cluster
    # --table: (schema, table) pairs; pg_restore then runs only the matching relations
    # (every name in every schema given) and their data.
    tables: tuple[tuple[str, str], ...] = ()

    def runs(self, entry: TocEntry) -> bool:
        """Whether pg_restore runs ``entry`` under the --table selection."""
        if not self.tables:
            return True
        if entry.kind not in _SELECTABLE:
            return False
        return entry.schema in {s for s, _ in self.tables} and entry.name in {
            t for _, t in self.tables
        }


@dataclass
class TocPlan:
    """The entries the restore runs (``keep``), those it leaves out and why, the platform
    tables loaded through staging, and the obstacles found."""

    keep: list[TocEntry] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    staged: list[str] = field(default_factory=list)
    obstacles: list[Obstacle] = field(default_factory=list)
    platform: Platform | None = None  # set when restoring into a project of that platform

    @property
    def filtered(self) -> bool:
        return any(self.skipped.values())

    def skip(self, why: str, entry: TocEntry) -> None:
        self.skipped.setdefault(why, []).append(_label(entry))


def _label(entry: TocEntry) -> str:
    where = f"{entry.schema}." if entry.schema not in ("-", "") else ""
    return f"{entry.kind.lower()} {where}{entry.name}"


def names(items: Iterable[str], shown: int = SHOWN) -> str:
    listed = list(items)
    more = len(listed) - shown
    return ", ".join(listed[:shown]) + (f" and {more} more" if more > 0 else "")


def backup_platform(recorded: str | None, toc: Toc) -> Platform | None:
    """The platform a backup came from: as its manifest recorded it, or (older manifests)
    the platform whose admin roles own objects in the dump."""
    if recorded is not None:
        return platform_named(recorded)
    owners = toc.owners
    return next((p for p in PLATFORMS if p.admin_roles & owners), None)


def target_platform(state: TargetState, source: Platform | None) -> Platform | None:
    """The target is a project of the backup's platform, restored into as the platform's
    non-superuser role: its marker roles exist and so does at least one of its managed
    schemas. A superuser restores everything as it was instead (with --force over schemas
    that exist), as into any other server."""
    if state.superuser:
        return None
    found = identify(state.roles)
    if found is None or source is None or found.name != source.name:
        return None
    return found if state.schemas & found.managed_schemas else None


def _function_name(name: str) -> str:
    return name.partition("(")[0]


def _exists(state: TargetState, entry: TocEntry) -> str | None:
    """The owner of the target's object that ``entry`` would create, if it exists."""
    kind = _COMPARED.get(entry.kind)
    if kind is None:
        return None
    name = (
        _function_name(entry.name) if kind in ("FUNCTION", "PROCEDURE", "AGGREGATE") else entry.name
    )
    return state.objects.get((kind, entry.schema, name))


def _in_managed(entry: TocEntry, platform: Platform) -> bool:
    if entry.kind == "SCHEMA":
        return platform.manages(entry.name)
    if entry.kind in _COMMENTLIKE:
        kind, name = entry.subject
        if kind == "SCHEMA":
            return platform.manages(name)
    return platform.manages(entry.schema)


def _check_on_platform_table(plan: TocPlan, entry: TocEntry, state: TargetState) -> None:
    """The application's trigger or policy on a platform table: a trigger needs the TRIGGER
    privilege on it, a policy its owner's rights."""
    table = entry.name.split(" ", 1)[0]
    qualified = f"{entry.schema}.{table}"
    owner = state.objects.get(("TABLE", entry.schema, table))
    if owner is None:
        plan.obstacles.append(
            Obstacle(
                f"{_label(entry)} is on {qualified}, which the target project does not have",
                "restore into a project of the same platform version",
            )
        )
    elif entry.kind == "TRIGGER" and qualified not in state.trigger_tables:
        plan.obstacles.append(
            Obstacle(
                f"{_label(entry)}: {state.user} may not create triggers on {qualified} "
                f"(owned by {owner})",
                f"have {owner} grant TRIGGER on {qualified} to {state.user}, or restore as "
                "a superuser",
            )
        )
    elif entry.kind == "POLICY" and not state.may_act_as(owner):
        plan.obstacles.append(
            Obstacle(
                f"{_label(entry)}: only the owner of {qualified} ({owner}) may create policies "
                "on it",
                f"have {owner} create the policy after the restore, or restore as a superuser",
            )
        )


def _app_made(entry: TocEntry, state: TargetState, p: Platform) -> bool:
    """A trigger or policy on a platform table that the application added: the project lacks
    it, or has it (an earlier restore) calling a function outside the platform's schemas.
    Policies on platform tables are always the application's."""
    if _exists(state, entry) is None or entry.kind == "POLICY":
        return True
    called = state.trigger_functions.get((entry.schema, entry.name))
    return called is not None and not p.manages(called)


def _platform_filter(
    plan: TocPlan, entry: TocEntry, state: TargetState, p: Platform, data_only: bool
) -> bool:
    """Into a fresh project: True if ``entry`` is the platform's (left out or staged)."""
    kind_of, subject = entry.subject
    if _in_managed(entry, p):
        name = f"{entry.schema}.{entry.name}"
        if entry.kind == "TABLE DATA" and name in p.data_tables and not data_only:
            plan.staged.append(name)
            return False
        if entry.kind == "TABLE DATA":
            why = (
                "rows of the platform's tables (a full restore loads its data tables)"
                if name in p.data_tables
                else "rows of the platform's own bookkeeping (migrations, sessions, logs)"
            )
            plan.skip(why, entry)
            return True
        if entry.kind in _APP_KINDS_IN_MANAGED and _app_made(entry, state, p):
            _check_on_platform_table(plan, entry, state)
            return False  # the application's own trigger/policy on a platform table
        plan.skip("the platform's own (the project has it)", entry)
        return True
    if (entry.kind, entry.name) == ("SCHEMA", "public") or (kind_of, subject) == (
        "SCHEMA",
        "public",
    ):
        plan.skip("the platform's own (the project has it)", entry)
        return True
    if entry.kind == "EVENT TRIGGER" and entry.name in state.event_triggers:
        plan.skip("the platform's own (the project has it)", entry)
        return True
    if entry.kind == "DEFAULT ACL" and p.owned_by_platform(entry.owner):
        plan.skip("default privileges of the platform's roles (the project has its own)", entry)
        return True
    if entry.kind == "PUBLICATION" and entry.name in state.publications:
        plan.skip("the platform's own (the project has it)", entry)
        return True
    if entry.kind == "EXTENSION" and entry.name in state.installed_extensions:
        plan.skip("extensions the project already has", entry)
        return True
    if kind_of == "EXTENSION" and subject in state.installed_extensions:
        plan.skip("extensions the project already has", entry)
        return True
    return False


def plan_toc(
    toc: Toc,
    state: TargetState,
    opts: TocOptions,
    source: Platform | None,
) -> TocPlan:
    """Decide over every TOC entry; obstacles are collected, not raised."""
    plan = TocPlan(platform=target_platform(state, source))
    mapping = dict(opts.role_map)
    for entry in toc.entries:
        if plan.platform is not None and _platform_filter(
            plan, entry, state, plan.platform, opts.data_only
        ):
            continue
        kind_of, subject = entry.subject
        if entry.kind == "COMMENT" and kind_of == "EXTENSION":
            owner = state.extension_owners.get(subject)
            if owner is not None and not state.may_act_as(owner):
                plan.skip(f"comments on extensions owned by another role than {state.user}", entry)
                continue
        plan.keep.append(entry)
    if plan.platform is not None:
        order = plan.platform.data_tables  # parents first
        plan.staged.sort(key=order.index)
    if opts.data_only:
        return plan
    _check_entries(plan, state, opts, mapping)
    return plan


def _check_entries(
    plan: TocPlan, state: TargetState, opts: TocOptions, mapping: dict[str, str]
) -> None:
    superuser = state.superuser
    runs = [e for e in plan.keep if opts.runs(e)]
    events = [e.name for e in runs if e.kind == "EVENT TRIGGER"]
    if events and not superuser:
        plan.obstacles.append(
            Obstacle(
                f"event triggers need a superuser, and {state.user} is not one: {names(events)}",
                "restore as a superuser, or into a project of the platform the backup "
                "came from (its own event triggers are left as they are)",
            )
        )
    for entry in runs:
        if entry.kind != "EXTENSION" or entry.name in state.installed_extensions:
            continue
        if entry.name not in state.available_extensions:
            plan.obstacles.append(
                Obstacle(
                    f"extension {entry.name} is not available on {state.description}",
                    "install it on the target server first",
                )
            )
        elif entry.name in state.superuser_extensions and not superuser:
            schema = f" WITH SCHEMA {entry.schema}" if entry.schema not in ("-", "") else ""
            plan.obstacles.append(
                Obstacle(
                    f"extension {entry.name} can only be created by a superuser",
                    f"have an administrator run CREATE EXTENSION {entry.name}{schema} on the "
                    "target first, or restore as a superuser",
                )
            )
    if not opts.schema_only or opts.force:
        _check_existing(plan, state, opts)
    if not opts.no_privileges and not superuser:
        blocked = sorted(
            {
                mapping.get(e.owner, e.owner)
                for e in runs
                if e.kind == "DEFAULT ACL" and not state.may_act_as(mapping.get(e.owner, e.owner))
            }
        )
        for role in blocked:
            plan.obstacles.append(
                Obstacle(
                    f"the backup sets default privileges FOR ROLE {role}, and {state.user} is "
                    f"not a member of {role}",
                    f"--no-privileges, or --role-map {role}={state.user}",
                )
            )


def _check_existing(plan: TocPlan, state: TargetState, opts: TocOptions) -> None:
    """Objects the restore creates that the target already has: without --force they
    collide; with it they are dropped first, which needs their owner's rights."""
    clash: list[str] = []
    foreign: dict[str, list[str]] = {}
    for entry in plan.keep:
        if not opts.runs(entry):
            continue
        if (entry.kind, entry.name) == ("SCHEMA", "public"):
            continue  # every database has it: pg_restore never creates it
        if entry.kind == "SCHEMA":
            owner = state.schema_owners.get(entry.name)
        else:
            owner = _exists(state, entry)
        if owner is None or entry.kind in ("CONSTRAINT", "FK CONSTRAINT", "INDEX"):
            # Indexes and constraints go with their tables.
            continue
        if not opts.force:
            clash.append(_label(entry))
        elif not state.may_act_as(owner):
            foreign.setdefault(owner, []).append(_label(entry))
    if clash:
        plan.obstacles.append(
            Obstacle(
                f"{state.description} already has objects the backup creates: {names(clash)}",
                "--force (drops and recreates the backup's objects), or restore into an "
                "empty database",
            )
        )
    for owner, labels in sorted(foreign.items()):
        plan.obstacles.append(
            Obstacle(
                f"--force would replace objects owned by {owner}, and {state.user} is not a "
                f"member of {owner}: {names(labels)}",
                f"have {owner} (or a superuser) drop them first, or restore as a superuser",
            )
        )


def list_file_text(entries: Iterable[TocEntry]) -> str:
    """A ``pg_restore --use-list`` file: the kept entries, in dump order."""
    return "".join(f"{e.line or str(e.dump_id) + ';'}\n" for e in entries)
