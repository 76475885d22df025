"""Per-user data discovery: the user-scoped tables (those with the user id column, plus the users
table), their insertable columns, primary keys and sequences, ordered parents-first by their
foreign keys, and the tables that reference them without the column (warned about by name)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from drtool.errors import UsageError
from drtool.log import get_logger
from drtool.pg.snapshot import SYSTEM_SCHEMAS

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
class Discovery:
    """User-scoped tables parents-first, and warnings (tables whose rows would be missed, FK
    cycles)."""

    tables: list[UserTable]
    warnings: list[str] = field(default_factory=list)

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
select c.oid, n.nspname, c.relname
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

_FK_SQL = """
select conrelid, confrelid from pg_constraint
 where contype = 'f' and conparentid = 0 and (conrelid = any(%(oids)s::oid[])
                                              or confrelid = any(%(oids)s::oid[]))
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


def discover(
    conn: Conn,
    *,
    user_id_column: str,
    users_table: str,
    exclude_tables: Sequence[str] = (),
) -> Discovery:
    """The user-scoped tables of the connected database (exports.* settings)."""
    users_schema, users_name = split_name(users_table, "exports.users_table")
    excluded = {"{}.{}".format(*split_name(t, "exports.exclude_tables")) for t in exclude_tables}
    rows = conn.execute(_TABLES_SQL, {"system": list(SYSTEM_SCHEMAS)}).fetchall()
    all_tables = {as_int(r[0]): (str(r[1]), str(r[2])) for r in rows}
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

    def has_column(oid: int) -> bool:
        return facts[oid].has_column(user_id_column)

    scoped = {
        oid: f"{s}.{n}"
        for oid, (s, n) in all_tables.items()
        if oid == users_oid or (has_column(oid) and f"{s}.{n}" not in excluded)
    }
    fks = {
        (as_int(a), as_int(b)) for a, b in conn.execute(_FK_SQL, {"oids": list(scoped)}).fetchall()
    }
    warnings: list[str] = []
    missed = sorted(
        {all_tables[c] for c, p in fks if p in scoped and c not in scoped and not has_column(c)}
    )
    for schema, name in missed:
        warnings.append(
            f"{schema}.{name} references a user-scoped table but has no {user_id_column} "
            "column: its rows are not exported"
        )
    order, cycle = topological(scoped, fks)
    if cycle:
        warnings.append(
            "the foreign keys among user-scoped tables form a cycle: tables are ordered by "
            "dependency where possible, else by name"
        )
    for text in warnings:
        log.warning("%s", text)
    tables = [
        _table(
            *all_tables[oid],
            id_column if oid == users_oid else user_id_column,
            facts[oid],
            oid == users_oid,
        )
        for oid in order
    ]
    return Discovery(tables, warnings)
