"""Archival's view of one table: introspection (columns, primary key, types) and the SQL
pieces every archive statement shares: the policy condition and the batch-key filter, all
composed with ``psycopg.sql`` (identifiers quoted, values as literals or parameters)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from drtool.errors import UsageError
from drtool.pg.conn import qualified, table_oid

Conn = psycopg.Connection[tuple[object, ...]]
Key = tuple[str, ...]


@dataclass(frozen=True)
class TableInfo:
    """What archival needs of a table: its stored columns, primary key and column types."""

    schema: str
    name: str
    columns: tuple[str, ...]  # stored (non-generated) columns, in table order
    types: Mapping[str, str]  # format_type() of every column (catalog output, not config)
    pk: tuple[str, ...]
    identity: tuple[str, ...]
    # Not partitioned and no inheritance children: every row is in this table's own heap, so
    # a ctid names one row (archival deletes by ctid then).
    single_heap: bool = False

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def ident(self) -> sql.Composed:
        return qualified(self.schema, self.name)

    def column_list(self) -> sql.Composed:
        return sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)

    def pk_list(self, alias: str | None = None) -> sql.Composed:
        if alias:
            return sql.SQL(", ").join(sql.Identifier(alias, c) for c in self.pk)
        return sql.SQL(", ").join(sql.Identifier(c) for c in self.pk)

    def pk_text(self) -> sql.Composed:
        # Aliased: an output column named like the key would make ORDER BY sort the text.
        return sql.SQL(", ").join(
            sql.SQL("{}::text AS {}").format(sql.Identifier(c), sql.Identifier(f"_drtool_k{i}"))
            for i, c in enumerate(self.pk)
        )

    def key_filter(self, keys: Sequence[Key]) -> tuple[sql.Composed, list[str]]:
        """``pk IN (the batch's keys)`` and its parameters: one text array literal per key
        column, cast to the column's type, so the primary-key index is used."""
        arrays = [array_literal(k[i] for k in keys) for i in range(len(self.pk))]
        if len(self.pk) == 1:
            cond = sql.SQL("{} = ANY(%s::text[]::{}[])").format(
                sql.Identifier(self.pk[0]), sql.SQL(self.types[self.pk[0]])
            )
            return cond, arrays
        names = [sql.Identifier(f"k{i}") for i in range(len(self.pk))]
        cond = sql.SQL("({}) IN (SELECT {} FROM unnest({}) AS u({}))").format(
            self.pk_list(),
            sql.SQL(", ").join(
                sql.SQL("u.{}::{}").format(n, sql.SQL(self.types[c]))
                for n, c in zip(names, self.pk, strict=True)
            ),
            sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in self.pk),
            sql.SQL(", ").join(names),
        )
        return cond, arrays

    def after(self, key: Key | None) -> sql.Composable:
        """``(pk) > (key)``: the keyset cursor of primary-key order (values as literals: the
        batch's COPY is sent as one string, session.copy_lines)."""
        if key is None:
            return sql.SQL("true")
        values = sql.SQL(", ").join(
            sql.SQL("{}::{}").format(sql.Literal(v), sql.SQL(self.types[c]))
            for v, c in zip(key, self.pk, strict=True)
        )
        return sql.SQL("({}) > ({})").format(self.pk_list(), values)


def array_literal(values: Iterable[str]) -> str:
    """A PostgreSQL text-array literal with every element quoted (psycopg's list adapter
    costs ~2 us per element; a batch has thousands)."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def split_table(name: str) -> tuple[str, str]:
    schema, dot, table = name.partition(".")
    return (schema, table) if dot else ("public", name)


def describe_table(conn: Conn, table: str, where: str) -> TableInfo:
    """Columns, types, primary key; UsageError naming ``where`` (the policy key) if the table
    does not exist or has no primary key."""
    schema, name = split_table(table)
    oid = table_oid(conn, schema, name)
    if oid is None:
        raise UsageError(f"{where}: table {schema}.{name} does not exist in the database")
    attrs = conn.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod), a.attgenerated <> '',"
        "       a.attidentity <> ''"
        "  from pg_attribute a where a.attrelid = %s and a.attnum > 0 and not a.attisdropped"
        " order by a.attnum",
        (oid,),
    ).fetchall()
    pk = conn.execute(
        "select a.attname from pg_index i"
        "  join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
        " where i.indrelid = %s and i.indisprimary"
        " order by array_position(i.indkey::int2[], a.attnum)",
        (oid,),
    ).fetchall()
    kind = conn.execute(
        "select relkind = 'r' and not relhassubclass from pg_class where oid = %s", (oid,)
    ).fetchone()
    if not pk:
        raise UsageError(
            f"{where}: table {schema}.{name} has no primary key; archival deletes rows by "
            "primary key and cannot run on it",
            hint="add a primary key, or remove the policy",
        )
    return TableInfo(
        schema=schema,
        name=name,
        columns=tuple(str(a[0]) for a in attrs if not a[2]),
        types={str(a[0]): str(a[1]) for a in attrs},
        pk=tuple(str(p[0]) for p in pk),
        identity=tuple(str(a[0]) for a in attrs if a[3]),
        single_heap=bool(kind and kind[0]),
    )


def require_columns(info: TableInfo, columns: Sequence[tuple[str, str]]) -> None:
    """UsageError naming the policy key of the first column the table lacks."""
    for column, where in columns:
        if column not in info.types:
            raise UsageError(f"{where}: table {info.qualified} has no column {column!r}")


def condition(
    time_column: str, cutoff: datetime, where: Mapping[str, Sequence[str | int | bool]]
) -> sql.Composed:
    """The policy condition: ``time_column < cutoff`` and each ``where`` column IN its values.
    Untyped literals take the column's type (text, enum, integer, boolean alike)."""
    parts: list[sql.Composable] = [
        sql.SQL("{} < {}").format(sql.Identifier(time_column), sql.Literal(cutoff))
    ]
    for column, values in where.items():
        if not values:
            parts.append(sql.SQL("false"))
            continue
        literals = sql.SQL(", ").join(sql.Literal(_scalar(v)) for v in values)
        parts.append(sql.SQL("{} IN ({})").format(sql.Identifier(column), literals))
    return sql.SQL(" AND ").join(parts)


def _scalar(value: str | int | bool) -> str:
    # Quoted, untyped: the server resolves each literal to the column's type.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
