"""Tables' on-disk sizes (``pg_total_relation_size``: data, TOAST and indexes) for what a
backup's RECOVERY.md says it holds."""

from __future__ import annotations

from drtool.pg.conn import Target, connect

SIZES_SQL = """
select n.nspname || '.' || c.relname, pg_total_relation_size(c.oid)
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'm', 'f') and n.nspname || '.' || c.relname = any(%s)
"""


def table_sizes(target: Target, tables: list[str]) -> dict[str, int]:
    """Bytes on disk of each of ``tables`` (``schema.table``) now; a table gone is left out."""
    with connect(target, "reading table sizes") as conn:
        rows = conn.execute(SIZES_SQL, (tables,)).fetchall()
    return {str(name): int(str(size)) for name, size in rows}
