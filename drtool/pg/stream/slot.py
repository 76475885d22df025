"""The source side of continuous archiving: the publications, the logical replication slot
(``pgoutput``), reading committed changes through the SQL interface and the sequence values."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql

from drtool.errors import OperationError, RefusedError, UsageError
from drtool.pg.dump.snapshot import SYSTEM_SCHEMAS, USER_TABLES_WHERE, user_tables_params
from drtool.pg.stream.frames import parse_lsn

Conn = psycopg.Connection[tuple[object, ...]]
PLUGIN = "pgoutput"
PUBLISH_ALL = "insert, update, delete, truncate"
PUBLISH_INSERTS = "insert, truncate"
FETCH_ROWS = 2000


def insert_only_publication(publication: str) -> str:
    """The second publication: tables without a usable replica identity, whose UPDATE and
    DELETE PostgreSQL would reject if a publication published them."""
    return f"{publication}_inserts"


@dataclass(frozen=True)
class TableFacts:
    schema: str
    name: str
    oid: int
    ownable: bool  # the connected role owns it (directly or by membership): it can publish it
    identity: str  # relreplident: d(efault), f(ull), i(ndex), n(othing)
    has_key: bool  # default identity with a primary key, or a usable identity index
    shape: str  # columns (name:type:typmod, in order) and identity: a change means new DDL

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def replayable(self) -> bool:
        """UPDATE and DELETE can be published (and replayed) for it."""
        return self.identity == "f" or (self.identity in "di" and self.has_key)


def check_source(conn: Conn) -> None:
    """Logical decoding must be on and the role allowed to use it."""
    row = conn.execute(
        "select current_setting('wal_level'), r.rolreplication or r.rolsuper"
        "  from pg_roles r where r.rolname = current_user"
    ).fetchone()
    assert row is not None
    if row[0] != "logical":
        raise OperationError(
            f"the server's wal_level is {row[0]}, continuous archiving needs logical",
            hint="set wal_level = logical and restart PostgreSQL (on managed services: the "
            "logical replication / logical decoding setting)",
        )
    if not row[1]:
        raise OperationError(
            "the role drtool connects as lacks REPLICATION, which logical decoding needs",
            hint="ALTER ROLE <role> REPLICATION (on managed services the admin role has it)",
        )


def table_facts(conn: Conn, exclude_schemas: list[str]) -> list[TableFacts]:
    """Every ordinary table (partitions included) outside the system and excluded schemas
    and extensions, with what publishing it needs."""
    rows = conn.execute(
        """
        select n.nspname, c.relname, c.oid, pg_has_role(c.relowner, 'USAGE'), c.relreplident,
               case c.relreplident
                 when 'd' then exists (select 1 from pg_index i
                                        where i.indrelid = c.oid and i.indisprimary)
                 when 'i' then exists (select 1 from pg_index i
                                        where i.indrelid = c.oid and i.indisreplident)
                 else false end,
               coalesce((select string_agg(a.attname || ':' || a.atttypid || ':' || a.atttypmod,
                                           ',' order by a.attnum)
                           from pg_attribute a
                          where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped),
                        '')
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where """
        + USER_TABLES_WHERE
        + " order by 1, 2",
        user_tables_params(exclude_schemas),
    ).fetchall()
    return [
        TableFacts(
            schema=str(r[0]),
            name=str(r[1]),
            oid=int(r[2]),  # type: ignore[call-overload]
            ownable=bool(r[3]),
            identity=str(r[4]),
            has_key=bool(r[5]),
            shape=f"{r[4]}|{r[6]}",
        )
        for r in rows
    ]


@dataclass(frozen=True)
class PublicationState:
    exists: bool
    all_tables: bool
    publish: str
    tables: frozenset[str]  # schema.table


def publication_state(conn: Conn, name: str) -> PublicationState:
    row = conn.execute(
        "select puballtables, concat_ws(', ', case when pubinsert then 'insert' end,"
        " case when pubupdate then 'update' end, case when pubdelete then 'delete' end,"
        " case when pubtruncate then 'truncate' end) from pg_publication where pubname = %s",
        (name,),
    ).fetchone()
    if row is None:
        return PublicationState(False, False, "", frozenset())
    tables = conn.execute(
        "select schemaname || '.' || tablename from pg_publication_tables where pubname = %s",
        (name,),
    ).fetchall()
    return PublicationState(True, bool(row[0]), str(row[1]), frozenset(str(t[0]) for t in tables))


def sync_publication(conn: Conn, name: str, publish: str, tables: list[TableFacts]) -> list[str]:
    """Make publication ``name`` publish exactly ``tables`` (created when missing); returns the
    tables added. A publication FOR ALL TABLES (made by a superuser) is refused: it would
    publish UPDATE/DELETE of tables without a replica identity and break the application."""
    state = publication_state(conn, name)
    ident = sql.Identifier(name)
    if state.all_tables:
        raise RefusedError(
            f"publication {name} is FOR ALL TABLES: PostgreSQL would reject the application's "
            "UPDATE and DELETE on every table without a replica identity",
            hint=f"DROP PUBLICATION {name} (drtool creates its own, listing tables), or set "
            "stream.publication to another name",
        )
    wanted = {t.qualified: t for t in tables}
    with conn.transaction():
        if not state.exists:
            conn.execute(
                sql.SQL("create publication {} with (publish = {})").format(
                    ident, sql.Literal(publish)
                )
            )
        elif state.publish != publish:
            conn.execute(
                sql.SQL("alter publication {} set (publish = {})").format(
                    ident, sql.Literal(publish)
                )
            )
        added = sorted(set(wanted) - state.tables)
        gone = sorted(state.tables - set(wanted))
        for names, verb in ((added, "add"), (gone, "drop")):
            if names:
                conn.execute(
                    sql.SQL("alter publication {} {} table {}").format(
                        ident,
                        sql.SQL(verb),
                        sql.SQL(", ").join(sql.Identifier(*n.split(".", 1)) for n in names),
                    )
                )
    return added


def drop_publication(conn: Conn, name: str) -> bool:
    if not publication_state(conn, name).exists:
        return False
    conn.execute(sql.SQL("drop publication {}").format(sql.Identifier(name)))
    return True


@dataclass(frozen=True)
class SlotState:
    name: str
    plugin: str | None
    database: str | None
    confirmed_lsn: int
    restart_lsn: int | None
    active: bool
    active_pid: int | None
    wal_status: str | None
    retained_bytes: int  # WAL the server keeps for this slot (from its restart_lsn)
    pending_bytes: int  # WAL written since the slot's confirmed position


def slot_state(conn: Conn, name: str) -> SlotState | None:
    row = conn.execute(
        """
        select plugin, database, confirmed_flush_lsn::text, restart_lsn::text, active,
               active_pid, wal_status,
               coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint,
               coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint
          from pg_replication_slots where slot_name = %s
        """,
        (name,),
    ).fetchone()
    if row is None:
        return None
    return SlotState(
        name=name,
        plugin=str(row[0]) if row[0] else None,
        database=str(row[1]) if row[1] else None,
        confirmed_lsn=parse_lsn(str(row[2])) if row[2] else 0,
        restart_lsn=parse_lsn(str(row[3])) if row[3] else None,
        active=bool(row[4]),
        active_pid=int(row[5]) if row[5] is not None else None,  # type: ignore[call-overload]
        wal_status=str(row[6]) if row[6] else None,
        retained_bytes=int(row[7]),  # type: ignore[call-overload]
        pending_bytes=int(row[8]),  # type: ignore[call-overload]
    )


def check_slot(state: SlotState, dbname: str) -> None:
    if state.plugin != PLUGIN or state.database != dbname:
        raise UsageError(
            f"replication slot {state.name} is not a {PLUGIN} slot of database {dbname} "
            f"(plugin {state.plugin}, database {state.database})",
            hint="set stream.slot to another name; drtool never touches a slot it did not make",
        )
    if state.wal_status == "lost":
        raise OperationError(
            f"replication slot {state.name} lost WAL it needed (max_slot_wal_keep_size): "
            "changes are missing from the stream",
            hint="`drtool stream drop` then `drtool stream run` (a new base backup starts a "
            "new chain); recovery before that point uses the older chain",
        )


def create_slot(conn: Conn, name: str) -> int:
    """Create the slot; returns its consistent point (changes committed after it are read)."""
    row = conn.execute(
        "select lsn::text from pg_create_logical_replication_slot(%s, %s)", (name, PLUGIN)
    ).fetchone()
    assert row is not None
    return parse_lsn(str(row[0]))


def drop_slot(conn: Conn, name: str) -> None:
    conn.execute("select pg_drop_replication_slot(%s)", (name,))


def advance_slot(conn: Conn, name: str, lsn: str) -> None:
    conn.execute("select pg_replication_slot_advance(%s, %s::pg_lsn)", (name, lsn))


def flush_lsn(conn: Conn) -> str:
    row = conn.execute("select pg_current_wal_flush_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


@contextlib.contextmanager
def peek_changes(
    conn: Conn, slot: str, publications: list[str], upto_lsn: str, max_changes: int
) -> Iterator[Iterator[tuple[int, int, bytes]]]:
    """The committed changes after the slot's confirmed position up to ``upto_lsn``, whole
    transactions, stopping after about ``max_changes`` messages: ``(lsn, xid, pgoutput
    message)`` fetched in batches through a server-side cursor (the client holds one batch).
    Nothing is consumed: the slot moves only with ``advance_slot``."""
    with conn.transaction():
        cur = conn.cursor(name="drtool_stream_peek")
        try:
            cur.execute(
                "select lsn::text, xid::text::bigint, data"
                "  from pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, %s,"
                "       'proto_version', '1', 'publication_names', %s)",
                (slot, upto_lsn, max_changes, ",".join(publications)),
            )

            def rows() -> Iterator[tuple[int, int, bytes]]:
                while True:
                    batch = cur.fetchmany(FETCH_ROWS)
                    if not batch:
                        return
                    for lsn, xid, data in batch:
                        yield parse_lsn(str(lsn)), int(xid or 0), bytes(data)  # type: ignore[call-overload]

            yield rows()
        finally:
            cur.close()


def read_sequences(conn: Conn, exclude_schemas: list[str]) -> dict[str, int]:
    """Every sequence's current value the role can read, by its quoted qualified name (for
    ``setval(name::regclass, value)``)."""
    rows = conn.execute(
        """
        select format('%%I.%%I', schemaname, sequencename), last_value
          from pg_sequences
         where last_value is not null and schemaname <> all(%s::text[])
           and not (schemaname like any(%s::text[]))
        """,
        (list(SYSTEM_SCHEMAS), [p.replace("*", "%") for p in exclude_schemas]),
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}  # type: ignore[call-overload]


def set_sequences(conn: Conn, values: dict[str, int]) -> list[str]:
    """``setval`` each sequence that exists in the target; returns those that do not."""
    missing = []
    for name, value in sorted(values.items()):
        row = conn.execute("select to_regclass(%s)", (name,)).fetchone()
        if row is None or row[0] is None:
            missing.append(name)
            continue
        conn.execute("select setval(%s::regclass, %s, true)", (name, value))
    return missing
