"""What a backup's exclusions break: objects ``pg_dump`` still writes that need something
``backup.exclude_schemas`` / ``backup.exclude_table_data`` leave out, so the dump cannot be
restored as it stands.

- extensions installed in an excluded schema (``pg_dump`` still emits ``CREATE EXTENSION ...
  WITH SCHEMA <excluded>``);
- objects in kept schemas that depend on objects in excluded schemas (column defaults and
  column types, views, policies, triggers, indexes, function signatures, inheritance, ...),
  and objects outside any schema that pg_dump writes regardless (event triggers, casts,
  foreign-data wrappers, languages);
- foreign keys from kept tables to tables in excluded schemas;
- foreign keys from tables whose rows are kept to tables whose rows are excluded (the foreign
  key cannot be re-created over the dumped rows).

One catalog query (pg_depend, pg_constraint, pg_extension), read in the caller's transaction:
the backup runs it in its snapshot, so it sees exactly what ``pg_dump`` dumps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg

Conn = psycopg.Connection[tuple[object, ...]]

# How many objects one warning names before "and N more".
MAX_LISTED = 5

EXTENSION = "extension"  # an extension installed in an excluded schema
OBJECT = "object"  # an object in a kept schema that uses an object in an excluded schema
FOREIGN_KEY = "foreign_key"  # a foreign key to a table in an excluded schema
FOREIGN_KEY_DATA = "foreign_key_data"  # a foreign key to a table whose rows are excluded


@dataclass(frozen=True)
class Dependency:
    """One object that needs something the backup leaves out.

    ``schema``/``dependent``: where the object that breaks lives and what it is
    (``policy p on table public.notes``; for an extension its name; ``""`` for objects
    outside any schema, such as event triggers and casts). ``ref_schema`` /
    ``referenced``: what it needs (``function platform.tenant()``; for an extension the
    schema). ``table``: for foreign keys, the referencing table (``public.notes``).
    """

    kind: str
    schema: str
    dependent: str
    ref_schema: str
    referenced: str
    table: str | None = None


def schema_pattern_regex(pattern: str) -> str:
    """A ``pg_dump --exclude-schema`` pattern as an anchored regular expression, as pg_dump
    reads it: ``*`` any characters, ``?`` one character, letters folded to lower case, and
    double quotes for a literal part (``""`` inside them is one quote)."""
    out: list[str] = []
    quoted = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == '"':
            if quoted and pattern[i + 1 : i + 2] == '"':
                out.append('"')
                i += 2
                continue
            quoted = not quoted
        elif not quoted and ch == "*":
            out.append(".*")
        elif not quoted and ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch if quoted else ch.lower()))
        i += 1
    return "^(" + "".join(out) + ")$"


_QUERY = """
with excluded as (
  select n.oid, n.nspname::text as name
    from pg_catalog.pg_namespace n
   where n.nspname ~ any(%(patterns)s::text[])
),
kept as (
  select n.oid, n.nspname::text as name
    from pg_catalog.pg_namespace n
   where n.oid not in (select oid from excluded)
     and n.nspname not in ('pg_catalog', 'information_schema')
     and n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
),
members as (
  select d.classid, d.objid, d.refobjid as extension
    from pg_catalog.pg_depend d
   where d.deptype = 'e' and d.refclassid = 'pg_catalog.pg_extension'::regclass
),
excluded_objects as (
  select 'pg_catalog.pg_class'::regclass as classid, c.oid, x.name as ref_schema
    from pg_catalog.pg_class c join excluded x on x.oid = c.relnamespace
  union all
  select 'pg_catalog.pg_proc'::regclass, p.oid, x.name
    from pg_catalog.pg_proc p join excluded x on x.oid = p.pronamespace
  union all
  select 'pg_catalog.pg_type'::regclass, t.oid, x.name
    from pg_catalog.pg_type t join excluded x on x.oid = t.typnamespace
  union all
  select 'pg_catalog.pg_operator'::regclass, o.oid, x.name
    from pg_catalog.pg_operator o join excluded x on x.oid = o.oprnamespace
  union all
  select 'pg_catalog.pg_collation'::regclass, o.oid, x.name
    from pg_catalog.pg_collation o join excluded x on x.oid = o.collnamespace
  union all
  select 'pg_catalog.pg_ts_config'::regclass, o.oid, x.name
    from pg_catalog.pg_ts_config o join excluded x on x.oid = o.cfgnamespace
  union all
  select 'pg_catalog.pg_ts_dict'::regclass, o.oid, x.name
    from pg_catalog.pg_ts_dict o join excluded x on x.oid = o.dictnamespace
  union all
  select 'pg_catalog.pg_opclass'::regclass, o.oid, x.name
    from pg_catalog.pg_opclass o join excluded x on x.oid = o.opcnamespace
  union all
  select 'pg_catalog.pg_opfamily'::regclass, o.oid, x.name
    from pg_catalog.pg_opfamily o join excluded x on x.oid = o.opfnamespace
  union all
  select 'pg_catalog.pg_conversion'::regclass, o.oid, x.name
    from pg_catalog.pg_conversion o join excluded x on x.oid = o.connamespace
),
uses as (
  -- Columns of a referenced table count as the table.
  select distinct d.classid, d.objid, d.objsubid, d.refclassid, d.refobjid,
         case when d.refclassid = 'pg_catalog.pg_class'::regclass then 0
              else d.refobjsubid end as refobjsubid,
         eo.ref_schema
    from pg_catalog.pg_depend d
    join excluded_objects eo on eo.classid = d.refclassid and eo.oid = d.refobjid
   where d.deptype in ('n', 'a')
     and d.classid <> 'pg_catalog.pg_extension'::regclass
     and not (d.classid = 'pg_catalog.pg_constraint'::regclass
              and exists (select 1 from pg_catalog.pg_constraint k
                           where k.oid = d.objid and k.contype = 'f'))
),
located as (
  select u.*,
         case u.classid
           when 'pg_catalog.pg_class'::regclass then u.objid
           when 'pg_catalog.pg_attrdef'::regclass
             then (select a.adrelid from pg_catalog.pg_attrdef a where a.oid = u.objid)
           when 'pg_catalog.pg_trigger'::regclass
             then (select t.tgrelid from pg_catalog.pg_trigger t where t.oid = u.objid)
           when 'pg_catalog.pg_policy'::regclass
             then (select p.polrelid from pg_catalog.pg_policy p where p.oid = u.objid)
           when 'pg_catalog.pg_rewrite'::regclass
             then (select r.ev_class from pg_catalog.pg_rewrite r where r.oid = u.objid)
           when 'pg_catalog.pg_constraint'::regclass
             then (select nullif(k.conrelid, 0) from pg_catalog.pg_constraint k
                    where k.oid = u.objid)
         end as rel
    from uses u
),
objects as (
  select l.*,
         coalesce((select n.nspname::text from pg_catalog.pg_class c
                     join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                    where c.oid = l.rel),
                  (pg_catalog.pg_identify_object(l.classid, l.objid, 0)).schema) as schema
    from located l
   where not exists (select 1 from members m where m.classid = l.classid and m.objid = l.objid)
     and not exists (select 1 from members m
                      where m.classid = 'pg_catalog.pg_class'::regclass and m.objid = l.rel)
),
fkeys as (
  select k.oid, k.conname, c.oid as rel, cn.name as schema,
         cn.name || '.' || c.relname as tbl, r.oid as refrel, r.relnamespace as refnsp,
         rn.nspname::text as ref_schema, rn.nspname || '.' || r.relname as reftbl
    from pg_catalog.pg_constraint k
    join pg_catalog.pg_class c on c.oid = k.conrelid
    join kept cn on cn.oid = c.relnamespace
    join pg_catalog.pg_class r on r.oid = k.confrelid
    join pg_catalog.pg_namespace rn on rn.oid = r.relnamespace
   where k.contype = 'f' and k.conparentid = 0
     and not exists (select 1 from members m
                      where m.classid = 'pg_catalog.pg_class'::regclass and m.objid = c.oid)
)
select 'extension', x.name, e.extname::text, x.name, 'schema ' || quote_ident(x.name), null
  from pg_catalog.pg_extension e join excluded x on x.oid = e.extnamespace
union all
select 'object', coalesce(o.schema, ''),
       case when o.classid = 'pg_catalog.pg_rewrite'::regclass
                 and (select r.rulename from pg_catalog.pg_rewrite r where r.oid = o.objid)
                     = '_RETURN'
            then pg_catalog.pg_describe_object('pg_catalog.pg_class'::regclass, o.rel, 0)
            else pg_catalog.pg_describe_object(o.classid, o.objid, o.objsubid) end,
       o.ref_schema,
       pg_catalog.pg_describe_object(o.refclassid, o.refobjid, o.refobjsubid)
       || coalesce(' (extension ' || (select quote_ident(e.extname) from members m
                                        join pg_catalog.pg_extension e on e.oid = m.extension
                                       where m.classid = o.refclassid
                                         and m.objid = o.refobjid) || ')', ''),
       null
  from objects o
 where o.schema in (select name from kept)
    -- Objects outside any schema that pg_dump writes whatever the schema exclusions.
    or (o.schema is null
        and o.classid in ('pg_catalog.pg_event_trigger'::regclass,
                          'pg_catalog.pg_cast'::regclass,
                          'pg_catalog.pg_foreign_data_wrapper'::regclass,
                          'pg_catalog.pg_foreign_server'::regclass,
                          'pg_catalog.pg_language'::regclass,
                          'pg_catalog.pg_transform'::regclass))
union all
select 'foreign_key', f.schema,
       'foreign key ' || quote_ident(f.conname) || ' on '
       || pg_catalog.pg_describe_object('pg_catalog.pg_class'::regclass, f.rel, 0),
       f.ref_schema, pg_catalog.pg_describe_object('pg_catalog.pg_class'::regclass, f.refrel, 0),
       f.tbl
  from fkeys f
 where f.refnsp in (select oid from excluded)
union all
select 'foreign_key_data', f.schema, 'foreign key ' || quote_ident(f.conname),
       f.ref_schema, f.reftbl, f.tbl
  from fkeys f
 where f.reftbl = any(%(excluded_data)s::text[])
   and not (f.tbl = any(%(excluded_data)s::text[]))
   and f.refnsp not in (select oid from excluded)
"""


def find_dependencies(
    conn: Conn, exclude_schemas: list[str], excluded_data: list[str]
) -> list[Dependency]:
    """Everything the dump keeps that needs what ``exclude_schemas`` (pg_dump patterns) or
    ``excluded_data`` (``schema.table`` names whose rows are left out) leave out."""
    if not exclude_schemas and not excluded_data:
        return []
    params = {
        "patterns": [schema_pattern_regex(p) for p in exclude_schemas],
        "excluded_data": list(excluded_data),
    }
    with conn.transaction(force_rollback=True):
        # Object descriptions name every object with its schema: nothing is on the path.
        conn.execute("select pg_catalog.set_config('search_path', '', true)")
        rows = conn.execute(_QUERY, params).fetchall()
    found = {
        Dependency(
            kind=str(r[0]),
            schema=str(r[1]),
            dependent=str(r[2]),
            ref_schema=str(r[3]),
            referenced=str(r[4]),
            table=None if r[5] is None else str(r[5]),
        )
        for r in rows
    }
    return sorted(found, key=lambda d: (d.kind, d.schema, d.ref_schema, d.dependent, d.referenced))


_GROUP_ORDER = (EXTENSION, OBJECT, FOREIGN_KEY_DATA)


def _listed(items: list[str]) -> str:
    shown = "; ".join(items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return shown + (f"; and {more} more" if more > 0 else "")


def dependency_warnings(
    found: list[Dependency], rows: Mapping[str, int] | None = None
) -> list[str]:
    """One sentence per extension schema and per pair of schemas, naming the objects (at most
    ``MAX_LISTED``, then "and N more") and what breaks. ``rows`` (table -> row count in the
    snapshot) drops foreign keys from a table without rows, or to an excluded table that had
    none: nothing there can violate them."""
    groups: dict[tuple[str, str, str], list[Dependency]] = {}
    for dep in found:
        if (
            dep.kind == FOREIGN_KEY_DATA
            and rows is not None
            and (rows.get(dep.table or "") == 0 or rows.get(dep.referenced) == 0)
        ):
            continue  # no rows to violate it, or none left out
        # A foreign key to an excluded schema goes with the other objects that need it.
        group = OBJECT if dep.kind == FOREIGN_KEY else dep.kind
        groups.setdefault((group, dep.schema, dep.ref_schema), []).append(dep)
    warnings: list[str] = []
    for (group, schema, ref_schema), deps in sorted(
        groups.items(), key=lambda item: (_GROUP_ORDER.index(item[0][0]), item[0])
    ):
        if group == EXTENSION:
            names = sorted(d.dependent for d in deps)
            what = (
                f"extension {names[0]} is"
                if len(names) == 1
                else f"extensions {', '.join(names)} are"
            )
            warnings.append(
                f"restore will fail: {what} installed in schema {ref_schema}, which "
                f"backup.exclude_schemas leaves out, but the dump still creates "
                f"{'it' if len(names) == 1 else 'them'} there (CREATE EXTENSION ... WITH "
                f"SCHEMA {ref_schema}); keep schema {ref_schema} in the backup"
            )
        elif group == OBJECT:
            items = [
                f"{d.dependent} {'references' if d.kind == FOREIGN_KEY else 'uses'} {d.referenced}"
                for d in deps
            ]
            where = f"objects in schema {schema}" if schema else "database-wide objects"
            warnings.append(
                f"restore will fail: {where} need schema {ref_schema}, "
                f"which backup.exclude_schemas leaves out: {_listed(items)}"
            )
        else:
            items = [f"rows of {d.table} reference {d.referenced} ({d.dependent})" for d in deps]
            warnings.append(
                "restore will fail: backup.exclude_table_data leaves out rows that kept rows "
                f"reference, so these foreign keys cannot be re-created: {_listed(items)}"
            )
    return warnings
