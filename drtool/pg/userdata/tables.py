"""Per-user data discovery: the user-scoped tables (those with the user id column, those
configured in ``exports.user_columns``, plus the users table), their insertable columns, primary
keys and sequences, ordered parents-first by their foreign keys; the tables whose rows are not
exported although they belong to users (named, with the reason); and the managed platform the
database runs on (its credential columns are redacted from archives for data subjects)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from drtool.errors import UsageError
from drtool.log import get_logger
from drtool.pg.dump.snapshot import SYSTEM_SCHEMAS
from drtool.platforms import Platform, identify

# Columns whose values say when a row was written, for ``export-users --changed-since``.
TIME_COLUMN_NAMES = ("updated_at", "created_at", "inserted_at", "modified_at")
TIME_TYPES = ("timestamp with time zone", "timestamp without time zone", "date")

log = get_logger("pg.userdata")

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    generated: bool = False  # GENERATED ALWAYS AS (...) STORED: computed, never inserted
    identity: str = ""  # '' | 'a' (ALWAYS) | 'd' (BY DEFAULT)


@dataclass(frozen=True)
class UserTable:
    """One user-scoped table: ``user_column`` selects the user's rows (the users table's own
    id column for the users table)."""

    schema: str
    name: str
    user_column: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    is_users_table: bool = False
    sequences: tuple[tuple[str, str], ...] = ()  # (column, schema-qualified sequence)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def copy_columns(self) -> tuple[str, ...]:
        """The columns a restore can write: generated columns are recomputed by the server."""
        return tuple(c.name for c in self.columns if not c.generated)

    @property
    def time_columns(self) -> tuple[str, ...]:
        return tuple(
            c.name for c in self.columns if c.name in TIME_COLUMN_NAMES and c.type in TIME_TYPES
        )

    @property
    def has_always_identity(self) -> bool:
        return any(c.identity == "a" for c in self.columns)

    @property
    def user_type(self) -> str:
        """The user column's type ('' if unknown)."""
        return next((c.type for c in self.columns if c.name == self.user_column), "")

    def user_value(self, user_id: str) -> sql.Composable:
        """The user id as this table's user column compares with it: as text for a text
        column (``storage.objects.owner_id``), else an untyped literal that the server reads as
        the column's type (uuid)."""
        if is_text_type(self.user_type):
            return sql.SQL("{}::text").format(sql.Literal(user_id))
        return sql.Literal(user_id)

    def user_is(self, alias: str, user_id: str) -> sql.Composed:
        """``alias.user_column = <user id>``: true for the user's rows, NULL for rows whose
        user column is NULL (wrap in ``coalesce`` or use ``IS [NOT] DISTINCT FROM`` to negate)."""
        return sql.SQL("{a}.{u} = {v}").format(
            a=sql.Identifier(alias), u=sql.Identifier(self.user_column), v=self.user_value(user_id)
        )


def is_text_type(type_name: str) -> bool:
    """text, varchar(n), char(n) as ``format_type`` spells them."""
    return type_name == "text" or type_name.startswith(("character varying", "character"))


_INTEGER_TYPES = ("smallint", "integer", "bigint")


def comparable(column_type: str, id_type: str) -> bool:
    """Can a user column of ``column_type`` hold the users table's ids (``id_type``)? Same
    type, a text column (compared as text), or integers of another width."""
    return (
        column_type == id_type
        or is_text_type(column_type)
        or (column_type in _INTEGER_TYPES and id_type in _INTEGER_TYPES)
    )


@dataclass
class TableFacts:
    """What the catalog says about one table."""

    columns: list[Column] = field(default_factory=list)
    pk: list[str] = field(default_factory=list)
    seqs: list[tuple[str, str]] = field(default_factory=list)

    def has_column(self, name: str) -> bool:
        return any(c.name == name for c in self.columns)


def as_int(value: object) -> int:
    """A count or oid from a result row."""
    if not isinstance(value, int):
        raise TypeError(f"expected an integer from PostgreSQL, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class NotExported:
    """A table holding users' rows (a foreign key to a user-scoped table, or a user column)
    whose rows are not exported, and why."""

    table: str
    reason: str
    excluded: bool = False  # in exports.exclude_tables: deliberate, not warned about

    def as_dict(self) -> dict[str, object]:
        return {"table": self.table, "reason": self.reason, "excluded": self.excluded}


@dataclass(frozen=True)
class Discovery:
    """User-scoped tables parents-first; the tables whose users' rows are not exported (named,
    never silently skipped); warnings (those tables, FK cycles); the managed platform."""

    tables: list[UserTable]
    warnings: list[str] = field(default_factory=list)
    not_exported: list[NotExported] = field(default_factory=list)
    platform: Platform | None = None

    @property
    def users_table(self) -> UserTable:
        return next(t for t in self.tables if t.is_users_table)


def split_name(name: str, setting: str) -> tuple[str, str]:
    """``schema.table`` or ``table`` (schema public), as configured: names are taken literally."""
    schema, dot, table = name.partition(".")
    if not dot:
        schema, table = "public", name
    if not schema or not table:
        raise UsageError(f"{setting}: {name!r} is not schema.table")
    return schema, table


_TABLES_SQL = """
select c.oid, n.nspname, c.relname, has_table_privilege(c.oid, 'SELECT')
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p') and not c.relispartition
   and n.nspname <> all(%(system)s::text[])
   and n.nspname not like 'pg\\_temp\\_%%' and n.nspname not like 'pg\\_toast%%'
   and not exists (select 1 from pg_depend d
                    where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
"""

_COLUMNS_SQL = """
select a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod),
       a.attgenerated <> '', a.attidentity::text
  from pg_attribute a
 where a.attrelid = any(%(oids)s::oid[]) and a.attnum > 0 and not a.attisdropped
 order by a.attrelid, a.attnum
"""

_PK_SQL = """
select i.indrelid, a.attname
  from pg_index i
  cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
  join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
 where i.indisprimary and i.indrelid = any(%(oids)s::oid[])
 order by i.indrelid, k.ord
"""

_SEQ_SQL = """
select d.refobjid, a.attname, quote_ident(sn.nspname) || '.' || quote_ident(s.relname)
  from pg_depend d
  join pg_class s on s.oid = d.objid and s.relkind = 'S'
  join pg_namespace sn on sn.oid = s.relnamespace
  join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
 where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass
   and d.deptype in ('a', 'i') and d.refobjid = any(%(oids)s::oid[])
"""

_ROLES_SQL = "select rolname from pg_roles"

# A foreign key declared on (or referencing) a partition counts as one of its partitioned
# root: partitions are not in the table list, their root is.
_FK_SQL = """
select k.child, k.parent
  from (select coalesce(pg_partition_root(conrelid)::oid, conrelid) as child,
               coalesce(pg_partition_root(confrelid)::oid, confrelid) as parent
          from pg_constraint
         where contype = 'f' and conparentid = 0) k
 where k.child <> k.parent
   and (k.child = any(%(oids)s::oid[]) or k.parent = any(%(oids)s::oid[]))
"""


def describe(conn: Conn, oids: Sequence[int]) -> dict[int, TableFacts]:
    """Columns, primary key and owned sequences of each table, by oid."""
    facts = {oid: TableFacts() for oid in oids}
    args = {"oids": list(oids)}
    for oid, name, typ, generated, identity in conn.execute(_COLUMNS_SQL, args).fetchall():
        col = Column(str(name), str(typ), bool(generated), str(identity or ""))
        facts[as_int(oid)].columns.append(col)
    for oid, name in conn.execute(_PK_SQL, args).fetchall():
        facts[as_int(oid)].pk.append(str(name))
    for oid, column, seq in conn.execute(_SEQ_SQL, args).fetchall():
        facts[as_int(oid)].seqs.append((str(column), str(seq)))
    return facts


def _table(schema: str, name: str, user_column: str, facts: TableFacts, users: bool) -> UserTable:
    return UserTable(
        schema=schema,
        name=name,
        user_column=user_column,
        columns=tuple(facts.columns),
        primary_key=tuple(facts.pk),
        is_users_table=users,
        sequences=tuple(sorted(facts.seqs)),
    )


def topological(names: dict[int, str], edges: set[tuple[int, int]]) -> tuple[list[int], bool]:
    """Parents before children (edge = (child, parent)); ties and cycles in name order.
    Returns the order and whether a cycle forced a fallback."""
    parents: dict[int, set[int]] = {oid: set() for oid in names}
    for child, parent in edges:
        if child != parent and child in names and parent in names:
            parents[child].add(parent)
    order: list[int] = []
    done: set[int] = set()
    remaining = sorted(names, key=lambda o: names[o])
    cycle = False
    while remaining:
        ready = [o for o in remaining if parents[o] <= done]
        if not ready:
            cycle = True
            ready = [remaining[0]]
        for oid in ready:
            order.append(oid)
            done.add(oid)
        remaining = [o for o in remaining if o not in done]
    return order, cycle


def detect_platform(conn: Conn) -> Platform | None:
    """The managed platform whose marker roles exist on the server (Supabase's
    ``supabase_admin`` and ``authenticator``), or None."""
    return identify({str(r[0]) for r in conn.execute(_ROLES_SQL).fetchall()})


def _configured_columns(
    user_columns: dict[str, str],
    all_tables: dict[int, tuple[str, str]],
    facts: dict[int, TableFacts],
    id_type: str,
) -> dict[int, str]:
    """exports.user_columns by oid; exit 2 for a table or column that does not exist or a
    column that cannot hold a user id."""
    by_name = {sn: oid for oid, sn in all_tables.items()}
    out: dict[int, str] = {}
    for entry, column in user_columns.items():
        schema, name = split_name(entry, "exports.user_columns")
        oid = by_name.get((schema, name))
        hint = "exports.user_columns maps schema.table to the column holding the user id"
        if oid is None:
            raise UsageError(
                f"exports.user_columns: no table {schema}.{name} in the database", hint=hint
            )
        col = next((c for c in facts[oid].columns if c.name == column), None)
        if col is None:
            raise UsageError(
                f"exports.user_columns: {schema}.{name} has no column {column!r}", hint=hint
            )
        if col.generated or not comparable(col.type, id_type):
            what = "a generated column" if col.generated else f"of type {col.type}"
            raise UsageError(
                f"exports.user_columns: {schema}.{name}.{column} is {what}; it cannot hold "
                f"the user id ({id_type})",
                hint="name a uuid or text column holding the user id",
            )
        out[oid] = column
    return out


def discover(
    conn: Conn,
    *,
    user_id_column: str,
    users_table: str,
    exclude_tables: Sequence[str] = (),
    user_columns: dict[str, str] | None = None,
) -> Discovery:
    """The user-scoped tables of the connected database (exports.* settings)."""
    users_schema, users_name = split_name(users_table, "exports.users_table")
    excluded = {"{}.{}".format(*split_name(t, "exports.exclude_tables")) for t in exclude_tables}
    rows = conn.execute(_TABLES_SQL, {"system": list(SYSTEM_SCHEMAS)}).fetchall()
    all_tables = {as_int(r[0]): (str(r[1]), str(r[2])) for r in rows}
    readable = {as_int(r[0]): bool(r[3]) for r in rows}
    users_oid = next((o for o, sn in all_tables.items() if sn == (users_schema, users_name)), None)
    if users_oid is None:
        raise UsageError(
            f"exports.users_table {users_table!r}: no such table in the database",
            hint="set exports.users_table to the table that lists the users (schema.table)",
        )
    facts = describe(conn, list(all_tables))
    users_pk = facts[users_oid].pk
    if len(users_pk) != 1:
        raise UsageError(
            f"exports.users_table {users_table}: needs a single-column primary key (the user id)"
        )
    id_column = users_pk[0]
    id_type = next(c.type for c in facts[users_oid].columns if c.name == id_column)
    configured = _configured_columns(user_columns or {}, all_tables, facts, id_type)

    def qualified_name(oid: int) -> str:
        return "{}.{}".format(*all_tables[oid])

    def column_of(oid: int) -> Column | None:
        """The table's user column (configured, else user_id_column), if it has one."""
        name = configured.get(oid, user_id_column)
        return next((c for c in facts[oid].columns if c.name == name), None)

    not_exported: dict[int, str] = {}
    deliberate: set[int] = set()  # in exports.exclude_tables: named, not warned about
    user_column: dict[int, str] = {users_oid: id_column}
    for oid in all_tables:
        col = column_of(oid)
        if oid == users_oid or col is None:
            continue
        if qualified_name(oid) in excluded:
            not_exported[oid] = f"has {col.name} but is in exports.exclude_tables"
            deliberate.add(oid)
        elif col.generated or not comparable(col.type, id_type):
            what = "a generated column" if col.generated else col.type
            not_exported[oid] = (
                f"has {col.name} of {what}, which cannot hold the user id ({id_type}); "
                "set exports.user_columns or exports.exclude_tables"
            )
        elif not readable[oid]:
            not_exported[oid] = (
                f"has {col.name} but the connected role may not read it (grant SELECT, or "
                "add it to exports.exclude_tables)"
            )
        else:
            user_column[oid] = col.name
    scoped = {oid: qualified_name(oid) for oid in user_column}
    fks = {
        (as_int(a), as_int(b)) for a, b in conn.execute(_FK_SQL, {"oids": list(scoped)}).fetchall()
    }
    for child, parent in sorted(fks, key=lambda e: (qualified_name(e[0]), qualified_name(e[1]))):
        if parent not in scoped or child in scoped or child in not_exported:
            continue
        if qualified_name(child) in excluded:
            not_exported[child] = f"references {scoped[parent]} but is in exports.exclude_tables"
            deliberate.add(child)
        else:
            not_exported[child] = (
                f"references {scoped[parent]} but has no {user_id_column} column (a column "
                "holding the user id can be named in exports.user_columns)"
            )
    skipped = sorted(
        (
            NotExported(qualified_name(oid), why, oid in deliberate)
            for oid, why in not_exported.items()
        ),
        key=lambda n: n.table,
    )
    for oid in sorted(deliberate, key=qualified_name):
        log.info("%s %s: its rows are not exported", qualified_name(oid), not_exported[oid])
    warnings = [
        f"{qualified_name(oid)} {why}: its rows are not exported"
        for oid, why in sorted(not_exported.items(), key=lambda e: qualified_name(e[0]))
        if oid not in deliberate
    ]
    order, cycle = topological(scoped, fks)
    if cycle:
        warnings.append(
            "the foreign keys among user-scoped tables form a cycle: tables are ordered by "
            "dependency where possible, else by name"
        )
    for text in warnings:
        log.warning("%s", text)
    tables = [
        _table(*all_tables[oid], user_column[oid], facts[oid], oid == users_oid) for oid in order
    ]
    return Discovery(tables, warnings, skipped, detect_platform(conn))
