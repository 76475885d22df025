"""The restore target database, through one session per restore (``open_session``): what is
there (server version, privileges, user tables, roles, extensions, platform), creating the
roles a dump needs, and exact row counts afterwards. The only place with SQL for restore
targets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from drtool.errors import DatabaseError, RefusedError, UsageError
from drtool.pg.conn import Target, connect, qualified, server_version, table_oid, translate
from drtool.pg.dump.snapshot import SYSTEM_SCHEMAS, lock_key
from drtool.pg.dump.sql_text import Membership, RoleDefinition
from drtool.pg.platform.detect import PlatformFacts
from drtool.pg.platform.detect import detect as detect_platform

Conn = psycopg.Connection[tuple[object, ...]]

# Tables (plain and partitioned) outside the system schemas; extension members (e.g.
# PostGIS's spatial_ref_sys) belong to the extension, not to the user.
_USER_TABLES = """
select n.nspname, c.relname
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p')
   and n.nspname <> all(%s::text[])
   and n.nspname not like 'pg\\_temp\\_%%' and n.nspname not like 'pg\\_toast%%'
   and not exists (select 1 from pg_depend d
                    where d.classid = 'pg_class'::regclass and d.objid = c.oid
                      and d.deptype = 'e')
 order by 1, 2
"""


@dataclass(frozen=True)
class TargetState:
    """What a restore needs to know about its target before changing anything."""

    description: str
    server_major: int
    server_version: str
    user: str
    superuser: bool
    can_create_roles: bool
    user_tables: list[str] = field(default_factory=list)
    available_extensions: set[str] = field(default_factory=set)
    installed_extensions: set[str] = field(default_factory=set)
    schemas: set[str] = field(default_factory=set)
    roles: set[str] = field(default_factory=set)  # every role of the cluster
    member_of: set[str] = field(default_factory=set)  # roles the user may act as (MEMBER)
    event_triggers: set[str] = field(default_factory=set)
    # Extensions the server offers but the database lacks, that only a superuser may create.
    superuser_extensions: set[str] = field(default_factory=set)
    extension_owners: dict[str, str] = field(default_factory=dict)
    # Existing objects by (TOC kind, schema, TOC name) -> owner ("" where ownership is the
    # table's): relations, functions (by name), triggers and policies ("table name").
    objects: dict[tuple[str, str, str], str] = field(default_factory=dict)
    schema_owners: dict[str, str] = field(default_factory=dict)
    publications: set[str] = field(default_factory=set)
    # Tables ("schema.table") the user may create triggers on (TRIGGER privilege or owner).
    trigger_tables: set[str] = field(default_factory=set)
    # Triggers by (schema, "table trigger") -> the schema of the function they call.
    trigger_functions: dict[tuple[str, str], str] = field(default_factory=dict)

    def may_act_as(self, role: str) -> bool:
        return self.superuser or role == self.user or role in self.member_of


_ROLES = """
select rolname, rolname = current_user or pg_has_role(current_user, oid, 'MEMBER')
  from pg_roles
"""
_SUPERUSER_EXTENSIONS = """
select v.name from pg_available_extension_versions v
  join pg_available_extensions a on a.name = v.name and a.default_version = v.version
 where v.superuser and not v.trusted
   and not exists (select 1 from pg_extension e where e.extname = v.name)
"""
_EXTENSION_OWNERS = (
    "select e.extname, r.rolname from pg_extension e join pg_roles r on r.oid = e.extowner"
)
_RELATIONS = """
select case c.relkind when 'S' then 'SEQUENCE' when 'v' then 'VIEW'
                      when 'm' then 'MATERIALIZED VIEW' when 'f' then 'FOREIGN TABLE'
                      when 'i' then 'INDEX' when 'I' then 'INDEX' else 'TABLE' end,
       n.nspname, c.relname, pg_get_userbyid(c.relowner)
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f', 'i', 'I')
   and n.nspname <> all(%s::text[]) and n.nspname not like 'pg\\_%%'
union all
select case p.prokind when 'p' then 'PROCEDURE' when 'a' then 'AGGREGATE' else 'FUNCTION' end,
       n.nspname, p.proname, pg_get_userbyid(p.proowner)
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname <> all(%s::text[]) and n.nspname not like 'pg\\_%%'
union all
select 'TRIGGER', n.nspname, c.relname || ' ' || t.tgname, pg_get_userbyid(c.relowner)
  from pg_trigger t join pg_class c on c.oid = t.tgrelid
  join pg_namespace n on n.oid = c.relnamespace
 where not t.tgisinternal and n.nspname <> all(%s::text[])
union all
select 'POLICY', n.nspname, c.relname || ' ' || p.polname, pg_get_userbyid(c.relowner)
  from pg_policy p join pg_class c on c.oid = p.polrelid
  join pg_namespace n on n.oid = c.relnamespace
union all
select 'CONSTRAINT', n.nspname, c.relname || ' ' || k.conname, pg_get_userbyid(c.relowner)
  from pg_constraint k join pg_class c on c.oid = k.conrelid
  join pg_namespace n on n.oid = c.relnamespace
 where n.nspname <> all(%s::text[])
union all
select 'TYPE', n.nspname, t.typname, pg_get_userbyid(t.typowner)
  from pg_type t join pg_namespace n on n.oid = t.typnamespace
 where n.nspname <> all(%s::text[]) and n.nspname not like 'pg\\_%%'
   and t.typtype in ('e', 'c', 'd', 'r', 'm')
   and (t.typtype <> 'c' or exists (select 1 from pg_class c where c.oid = t.typrelid
                                     and c.relkind = 'c'))
"""

_TRIGGER_TABLES = """
select n.nspname || '.' || c.relname
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p') and n.nspname <> all(%s::text[])
   and has_table_privilege(c.oid, 'TRIGGER')
"""

_TRIGGER_FUNCTIONS = """
select n.nspname, c.relname || ' ' || t.tgname, fn.nspname
  from pg_trigger t join pg_class c on c.oid = t.tgrelid
  join pg_namespace n on n.oid = c.relnamespace
  join pg_proc p on p.oid = t.tgfoid join pg_namespace fn on fn.oid = p.pronamespace
 where not t.tgisinternal
"""


def _split(name: str) -> tuple[str, str]:
    schema, _, table = name.partition(".")
    return schema, table


def _read_state(conn: Conn, target: Target) -> TargetState:
    major, version = server_version(conn)
    row = conn.execute(
        "select current_user, rolsuper, rolcreaterole from pg_roles where rolname = current_user"
    ).fetchone()
    if row is None:
        raise DatabaseError(f"{target.describe()}: the connected role is not in pg_roles")
    user, superuser, createrole = str(row[0]), bool(row[1]), bool(row[2])
    tables = conn.execute(_USER_TABLES, (list(SYSTEM_SCHEMAS),)).fetchall()
    available = conn.execute("select name from pg_available_extensions").fetchall()
    installed = conn.execute("select extname from pg_extension").fetchall()
    schemas = conn.execute("select nspname, pg_get_userbyid(nspowner) from pg_namespace").fetchall()
    roles = conn.execute(_ROLES).fetchall()
    triggers = conn.execute("select evtname from pg_event_trigger").fetchall()
    su_only = conn.execute(_SUPERUSER_EXTENSIONS).fetchall()
    ext_owners = conn.execute(_EXTENSION_OWNERS).fetchall()
    system = list(SYSTEM_SCHEMAS)
    objects = conn.execute(_RELATIONS, (system,) * 5).fetchall()
    publications = conn.execute("select pubname from pg_publication").fetchall()
    trigger_tables = conn.execute(_TRIGGER_TABLES, (system,)).fetchall()
    trigger_functions = conn.execute(_TRIGGER_FUNCTIONS).fetchall()
    return TargetState(
        description=target.describe(),
        server_major=major,
        server_version=version,
        user=user,
        superuser=superuser,
        can_create_roles=superuser or createrole,
        user_tables=[f"{r[0]}.{r[1]}" for r in tables],
        available_extensions={str(r[0]) for r in available},
        installed_extensions={str(r[0]) for r in installed},
        schemas={str(r[0]) for r in schemas},
        roles={str(r[0]) for r in roles},
        member_of={str(r[0]) for r in roles if r[1]},
        event_triggers={str(r[0]) for r in triggers},
        superuser_extensions={str(r[0]) for r in su_only},
        extension_owners={str(r[0]): str(r[1]) for r in ext_owners},
        objects={(str(r[0]), str(r[1]), str(r[2])): str(r[3]) for r in objects},
        schema_owners={str(r[0]): str(r[1]) for r in schemas},
        publications={str(r[0]) for r in publications},
        trigger_tables={str(r[0]) for r in trigger_tables},
        trigger_functions={(str(r[0]), str(r[1])): str(r[2]) for r in trigger_functions},
    )


def inspect_target(target: Target) -> TargetState:
    """Read the target's facts in one short read-only session (a restore has them from its
    ``TargetSession``)."""
    with connect(target, "inspecting the restore target") as conn:
        return _read_state(conn, target)


def require_major(state: TargetState, backup_major: int) -> None:
    """pg_restore into an older major than the dump's server is unsupported: refuse (exit 2)."""
    if state.server_major < backup_major:
        raise UsageError(
            f"target {state.description} is PostgreSQL {state.server_major}, the backup is from "
            f"{backup_major}: restore into {backup_major} or newer",
            hint="a dump restores into the same or a newer PostgreSQL major, never an older one",
        )


def _role_statements(
    roles: list[RoleDefinition], memberships: list[Membership]
) -> list[sql.Composed]:
    # Attributes, settings and membership options come from this backup's authenticated
    # globals, and attributes/options are validated to pg_dumpall's keyword shapes (dump_sql).
    out: list[sql.Composed] = []
    for role in roles:
        ident = sql.Identifier(role.name)
        create = sql.SQL("CREATE ROLE {}").format(ident)
        if role.attributes:
            create = sql.SQL("{} WITH {}").format(create, sql.SQL(" ".join(role.attributes)))
        out.append(create)
        out += [sql.SQL("ALTER ROLE {} SET {}").format(ident, sql.SQL(s)) for s in role.settings]
    for grant in memberships:
        out.append(
            sql.SQL("GRANT {} TO {}{}").format(
                sql.Identifier(grant.role), sql.Identifier(grant.member), sql.SQL(grant.options)
            )
        )
    return out


class TargetSession:
    """A restore's one connection to its target, open from the plan to the final counts: it
    holds the restore's advisory lock, has read the target's facts once (``state``), and
    answers every later check and step over the same connection. pg_restore and psql connect
    on their own (they are other processes)."""

    def __init__(self, target: Target, conn: Conn) -> None:
        self.target = target
        self._conn = conn
        self.state = _read_state(conn, target)
        self._platform: tuple[PlatformFacts | None] | None = None

    @contextlib.contextmanager
    def _doing(self, doing: str) -> Iterator[Conn]:
        try:
            yield self._conn
        except psycopg.Error as exc:
            raise translate(exc, self.target, doing) from exc

    def table_states(self, tables: Iterable[str]) -> dict[str, bool | None]:
        """For each ``schema.table``: None if it does not exist, else whether it holds any row."""
        out: dict[str, bool | None] = {}
        with self._doing("checking the tables the restore loads") as conn:
            for name in tables:
                schema, table = _split(name)
                if table_oid(conn, schema, table) is None:
                    out[name] = None
                    continue
                query = sql.SQL("select exists (select 1 from only {})").format(
                    qualified(schema, table)
                )
                row = conn.execute(query).fetchone()
                out[name] = bool(row[0]) if row else False
        return out

    def platform(self) -> PlatformFacts | None:
        """The managed platform the target runs on, with its facts (read once)."""
        if self._platform is None:
            with self._doing("detecting the hosting platform") as conn:
                self._platform = (detect_platform(conn),)
        return self._platform[0]

    def create_roles(self, roles: list[RoleDefinition], memberships: list[Membership]) -> None:
        """Create ``roles`` (with their settings) and ``memberships`` in one transaction: all or
        none. Raises DatabaseError (e.g. insufficient privilege) having created nothing."""
        statements = _role_statements(roles, memberships)
        with self._doing("creating roles") as conn, conn.transaction():
            for statement in statements:
                conn.execute(statement)

    def drop_roles(self, names: Iterable[str]) -> list[str]:
        """Best effort: drop roles a failed restore created; returns those that remain."""
        left: list[str] = []
        for name in names:
            try:
                self._conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            except psycopg.Error:
                left.append(name)
        return left

    def count_rows(self, tables: Iterable[str]) -> dict[str, int]:
        """Exact ``count(*)`` of each ``schema.table``'s own rows on the target (``FROM ONLY``:
        an inheritance parent without its children's rows, as the backup counted it); missing
        tables: -1. Names are matched whole against the catalog, so a dot inside a schema or
        table name is no separator."""
        counts: dict[str, int] = {}
        with self._doing("counting restored rows") as conn:
            for name in tables:
                found = conn.execute(
                    "select n.nspname, c.relname from pg_class c"
                    " join pg_namespace n on n.oid = c.relnamespace"
                    " where c.relkind in ('r', 'p') and n.nspname || '.' || c.relname = %s"
                    " order by n.nspname = split_part(%s, '.', 1) desc limit 1",
                    (name, name),
                ).fetchone()
                if found is None:
                    counts[name] = -1
                    continue
                query = sql.SQL("select count(*) from only {}").format(
                    qualified(str(found[0]), str(found[1]))
                )
                row = conn.execute(query).fetchone()
                counts[name] = int(row[0]) if row else 0  # type: ignore[call-overload]
        return counts


@contextlib.contextmanager
def open_session(target: Target) -> Iterator[TargetSession]:
    """The restore's session: one connection, held for the whole restore with a session
    advisory lock on the target, so two restores into one database cannot interleave
    (RefusedError, exit 5); closing it releases the lock. An unreachable target fails here,
    with a hint."""
    with contextlib.ExitStack() as stack:
        try:
            conn = stack.enter_context(connect(target, "the restore"))
        except DatabaseError as exc:
            raise DatabaseError(
                exc.message,
                hint="check --to (host, port, database, user; a password via PGPASSWORD, "
                "~/.pgpass or the DSN); the database must exist (createdb)",
            ) from exc
        key = lock_key(f"drtool:restore:{target.describe()}")
        row = conn.execute("select pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not row or not row[0]:
            raise RefusedError(
                f"another drtool restore into {target.describe()} is running "
                f"(PostgreSQL advisory lock {key})",
                hint="wait for it to finish; the lock is released when it exits",
            )
        yield TargetSession(target, conn)
