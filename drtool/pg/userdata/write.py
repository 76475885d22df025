"""Writing one user's rows into a target database, in ONE transaction: each table's rows are
COPYed into a temp table, then inserted where missing (by primary key) or, in ``replace`` mode,
the user's rows that are not in the export are deleted (children first) and the exported ones
upserted (parents first), never touching a row of another user. A row that ``ON DELETE SET
NULL`` detached from the user (its user column NULL, its key in the export) is re-attached.
Sequences are moved past the restored values; user triggers are disabled for the transaction
where the role may (it owns the table)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql

from drtool.errors import IntegrityError, OperationError, UsageError
from drtool.log import get_logger
from drtool.pg.conn import Target, apply_copy_settings, connect, qualified
from drtool.pg.userdata.tables import Conn, UserTable, as_int, describe

MODES = ("insert-missing", "replace")
# A column of the temp tables (never of the restored ones): the key existed in the target
# before the restore wrote anything.
EXISTED = "__drtool_key_existed"

log = get_logger("pg.userdata-restore")


@dataclass
class TableOutcome:
    """Rows per table: ``source`` rows in the export; what was (or would be) done with them."""

    table: str
    source: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    conflicts: int = 0  # primary key taken by another user's row: left alone
    # Rows whose key is in the export but whose user column was NULL (ON DELETE SET NULL):
    # given the user back (insert-missing), or made the exported row (replace).
    reattached: int = 0


def _ids(names: Iterable[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _prefixed(alias: str, names: Iterable[str]) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(n)) for n in names
    )


def _match(left: str, right: str, names: Iterable[str]) -> sql.Composed:
    return sql.SQL(" and ").join(
        sql.SQL("{l}.{c} = {r}.{c}").format(
            l=sql.Identifier(left), r=sql.Identifier(right), c=sql.Identifier(n)
        )
        for n in names
    )


def _same_row(left: str, right: str, names: Iterable[str]) -> sql.Composed:
    # Compared as text: some types have no equality operator (json, point, xml), and the text
    # of a row under COPY_SETTINGS is exact.
    names = list(names)
    return sql.SQL("row({})::text is not distinct from row({})::text").format(
        _prefixed(left, names), _prefixed(right, names)
    )


class UserRestore:
    """The target transaction of one ``restore-user`` run (use as a context manager)."""

    def __init__(self, conn: Conn, user_id: str, mode: str) -> None:
        if mode not in MODES:
            raise UsageError(f"--mode must be one of {', '.join(MODES)}")
        self.conn = conn
        self.user_id = user_id
        self.mode = mode
        self.loaded: list[tuple[UserTable, str, TableOutcome]] = []
        self._triggers: list[tuple[UserTable, str, str]] = []
        self.warnings: list[str] = []

    # -- checking the target ---------------------------------------------------------------

    def check_tables(self, tables: list[UserTable]) -> list[UserTable]:
        """The target's own description of each table (its sequences, identity columns);
        exit 2 naming a table or column the target lacks."""
        rows = self.conn.execute(
            "select c.oid, n.nspname, c.relname from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r', 'p')"
        ).fetchall()
        oids = {(str(s), str(n)): as_int(o) for o, s, n in rows}
        missing = [t.qualified for t in tables if (t.schema, t.name) not in oids]
        if missing:
            raise UsageError(
                f"the target database has no table {', '.join(missing)}",
                hint="restore-user needs the schema in place (restore a backup with "
                "--schema-only first)",
            )
        facts = describe(self.conn, [oids[(t.schema, t.name)] for t in tables])
        out: list[UserTable] = []
        for table in tables:
            info = facts[oids[(table.schema, table.name)]]
            columns = {c.name: c for c in info.columns}
            lacking = [c for c in table.copy_columns if c not in columns]
            if lacking:
                raise UsageError(
                    f"{table.qualified} in the target has no column {', '.join(lacking)}"
                )
            out.append(
                UserTable(
                    schema=table.schema,
                    name=table.name,
                    user_column=table.user_column,
                    columns=tuple(columns[c] for c in table.copy_columns),
                    primary_key=tuple(info.pk),
                    is_users_table=table.is_users_table,
                    sequences=tuple(sorted(info.seqs)),
                )
            )
        return out

    # -- loading ---------------------------------------------------------------------------

    def load(self, table: UserTable, rows: Iterable[bytes]) -> TableOutcome:
        """COPY the user's rows of ``table`` into a temp table (dropped at commit)."""
        tmp = f"drtool_user_rows_{len(self.loaded)}"
        self.conn.execute(
            sql.SQL(
                "create temp table {tmp} on commit drop as select {cols} from {t} with no data"
            ).format(
                tmp=sql.Identifier(tmp),
                cols=_ids(table.copy_columns),
                t=qualified(table.schema, table.name),
            )
        )
        copy_sql = sql.SQL("copy {tmp} ({cols}) from stdin").format(
            tmp=sql.Identifier(tmp), cols=_ids(table.copy_columns)
        )
        with self.conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for chunk in rows:
                copy.write(chunk)
        outcome = TableOutcome(table.qualified)
        outcome.source = self._count(sql.SQL("select count(*) from {}").format(sql.Identifier(tmp)))
        wrong = self._count(
            sql.SQL("select count(*) from {tmp} where {u} is distinct from {uid}").format(
                tmp=sql.Identifier(tmp),
                u=sql.Identifier(table.user_column),
                uid=table.user_value(self.user_id),
            )
        )
        if wrong:
            raise IntegrityError(
                f"{table.qualified}: the source holds {wrong} row(s) of another user; "
                "nothing was restored"
            )
        if table.primary_key:
            # Which exported keys the target holds before anything is written (all tables
            # are loaded before the first write): a row that appears later was made by a
            # trigger during the restore, and is not the target's to keep (_fresh).
            self.conn.execute(
                sql.SQL("alter table {tmp} add column {e} boolean").format(
                    tmp=sql.Identifier(tmp), e=sql.Identifier(EXISTED)
                )
            )
            self.conn.execute(
                sql.SQL("update {tmp} s set {e} = exists (select 1 from {t} t where {k})").format(
                    tmp=sql.Identifier(tmp),
                    e=sql.Identifier(EXISTED),
                    t=qualified(table.schema, table.name),
                    k=_match("t", "s", table.primary_key),
                )
            )
        self.loaded.append((table, tmp, outcome))
        return outcome

    # -- planning and applying -------------------------------------------------------------

    # A target row holding an exported key is the user's, detached (its user column NULL:
    # ON DELETE SET NULL), or another user's. NULL is neither the user's nor another's, so
    # none of these is ever the negation of another (NOT (NULL = x) is NULL).

    def _mine(self, table: UserTable, alias: str) -> sql.Composed:
        return table.user_is(alias, self.user_id)

    def _detached(self, table: UserTable, alias: str) -> sql.Composed:
        return sql.SQL("{a}.{u} is null").format(
            a=sql.Identifier(alias), u=sql.Identifier(table.user_column)
        )

    def _theirs(self, table: UserTable, alias: str) -> sql.Composed:
        return sql.SQL("({a}.{u} is not null and {a}.{u} is distinct from {uid})").format(
            a=sql.Identifier(alias),
            u=sql.Identifier(table.user_column),
            uid=table.user_value(self.user_id),
        )

    def _claimable(self, table: UserTable, alias: str) -> sql.Composed:
        """The user's row, or a detached one: what the restore may write."""
        return sql.SQL("({} or {})").format(self._mine(table, alias), self._detached(table, alias))

    @staticmethod
    def _fresh() -> sql.Composed:
        """The target row holding the exported key (alias t, exported row s) did not exist
        when the rows were loaded: a trigger the role could not disable (one on ``auth.users``
        that creates the profile) made it during this restore."""
        return sql.SQL("not s.{}").format(sql.Identifier(EXISTED))

    def _joined(self, table: UserTable, tmp: str, where: sql.Composable) -> int:
        """Exported rows whose key the target holds, in a row matching ``where`` (alias t)."""
        return self._count(
            sql.SQL("select count(*) from {s} s join {t} t on {k} where {w}").format(
                s=sql.Identifier(tmp),
                t=qualified(table.schema, table.name),
                k=_match("t", "s", table.primary_key),
                w=where,
            )
        )

    def _count(self, query: sql.Composed) -> int:
        row = self.conn.execute(query).fetchone()
        return as_int(row[0]) if row else 0

    def plan(self) -> list[TableOutcome]:
        """--dry-run: what apply() would do, counted with SELECTs only."""
        for table, tmp, out in self.loaded:
            self._plan_table(table, tmp, out)
            writes = out.inserted + out.updated + out.reattached
            lacking = [
                p
                for p, n in (("INSERT", writes), ("UPDATE", writes), ("DELETE", out.deleted))
                if n and not self._may(table, p)
            ]
            if lacking:
                # The real run would stop here (apply): say so now.
                self.warnings.append(
                    f"{table.qualified}: the role may not {' and '.join(lacking)} it; the "
                    "restore would fail on it"
                )
        return [out for _, _, out in self.loaded]

    def _plan_table(self, table: UserTable, tmp: str, out: TableOutcome) -> None:
        t, s = qualified(table.schema, table.name), sql.Identifier(tmp)
        key = table.primary_key or table.copy_columns
        same_key = _match("t", "s", key) if table.primary_key else _same_row("t", "s", key)
        exists = sql.SQL("exists (select 1 from {t} t where {k})").format(t=t, k=same_key)
        out.inserted = self._count(
            sql.SQL("select count(*) from {s} s where not {e}").format(s=s, e=exists)
        )
        if table.primary_key:
            out.conflicts = self._joined(table, tmp, self._theirs(table, "t"))
            out.reattached = self._joined(table, tmp, self._detached(table, "t"))
        if self.mode == "replace" and table.primary_key:
            out.updated = self._joined(
                table,
                tmp,
                sql.SQL("{mine} and not {same}").format(
                    mine=self._mine(table, "t"),
                    same=_same_row("t", "s", table.copy_columns),
                ),
            )
        out.unchanged = out.source - out.inserted - out.updated - out.reattached - out.conflicts
        if self.mode == "replace" and not table.is_users_table:
            out.deleted = self._count(
                sql.SQL(
                    "select count(*) from {t} t where {mine} and not exists "
                    "(select 1 from {s} s where {k})"
                ).format(t=t, s=s, mine=self._mine(table, "t"), k=same_key)
            )

    def apply(self) -> list[TableOutcome]:
        """Write the rows: deletes children first (replace), inserts/upserts parents first.
        A table the role may not write (Supabase's auth tables on newer images: SELECT only)
        is left alone when nothing in it needs writing, else the run fails naming it."""
        self._disable_triggers()
        if self.mode == "replace":
            for table, tmp, out in reversed(self.loaded):
                if table.is_users_table:
                    continue
                if self._may(table, "DELETE"):
                    out.deleted = self._delete_absent(table, tmp)
                else:
                    self._plan_table(table, tmp, out)
                    self._refuse_if(table, out.deleted, "DELETE")
        for table, tmp, out in self.loaded:
            if self._may(table, "INSERT", "UPDATE"):
                self._write(table, tmp, out)
                if out.inserted or out.updated or out.reattached:
                    self._advance_sequences(table, tmp)
                continue
            deleted = out.deleted
            self._plan_table(table, tmp, out)
            fresh = (
                self._joined(
                    table,
                    tmp,
                    sql.SQL("{} and {}").format(self._fresh(), self._claimable(table, "t")),
                )
                if table.primary_key
                else 0
            )
            self._refuse_if(
                table, out.inserted + out.updated + out.reattached + fresh, "INSERT and UPDATE"
            )
            out.deleted = deleted
        self._enable_triggers()
        return [out for _, _, out in self.loaded]

    def _may(self, table: UserTable, *privileges: str) -> bool:
        row = self.conn.execute(
            "select bool_and(has_table_privilege(%s::regclass, p)) from unnest(%s::text[]) p",
            (f"{quote(table.schema)}.{quote(table.name)}", list(privileges)),
        ).fetchone()
        return bool(row and row[0])

    def _refuse_if(self, table: UserTable, rows: int, privileges: str) -> None:
        if rows:
            raise OperationError(
                f"{table.qualified}: {rows} row(s) of user {self.user_id} need writing, but the "
                f"role may not {privileges} it; nothing was restored",
                hint="restore as a role that may write it (on Supabase, bring the user back "
                "through the Auth API first: postgres may only read the auth tables on newer "
                "projects), or exclude it with exports.exclude_tables before exporting",
            )

    def _delete_absent(self, table: UserTable, tmp: str) -> int:
        key = table.primary_key or table.copy_columns
        same_key = _match("t", "s", key) if table.primary_key else _same_row("t", "s", key)
        cur = self.conn.execute(
            sql.SQL(
                "delete from {t} t where {mine} and not exists (select 1 from {s} s where {k})"
            ).format(
                t=qualified(table.schema, table.name),
                s=sql.Identifier(tmp),
                mine=self._mine(table, "t"),
                k=same_key,
            )
        )
        return cur.rowcount

    def _write(self, table: UserTable, tmp: str, out: TableOutcome) -> None:
        t, s, cols = qualified(table.schema, table.name), sql.Identifier(tmp), table.copy_columns
        overriding = sql.SQL(" overriding system value" if table.has_always_identity else "")
        if not table.primary_key:
            out.inserted = self.conn.execute(
                sql.SQL(
                    "insert into {t} ({c}){o} select {sc} from {s} s where not exists "
                    "(select 1 from {t} t where {same})"
                ).format(
                    t=t,
                    c=_ids(cols),
                    o=overriding,
                    sc=_prefixed("s", cols),
                    s=s,
                    same=_same_row("t", "s", cols),
                )
            ).rowcount
            out.unchanged = out.source - out.inserted
            return
        pk = table.primary_key
        rest = [c for c in cols if c not in pk]
        # Rows a trigger made in this transaction (the profile an auth.users trigger inserts
        # when the user's row comes back) were not in the target: they become the exported
        # rows, and count as inserted.
        fresh_and_claimable = sql.SQL("{} and {}").format(
            self._fresh(), self._claimable(table, "t")
        )
        fresh = self._joined(table, tmp, fresh_and_claimable)
        if fresh and rest:
            self._update_from(table, tmp, rest, fresh_and_claimable)
        action: sql.Composable = sql.SQL("do nothing")
        if self.mode == "insert-missing":
            # Detached by ON DELETE SET NULL: the user column comes back, the rest is kept.
            out.reattached = self._update_from(
                table, tmp, [table.user_column], self._detached(table, "t")
            )
        elif rest:
            # Detached rows are made the exported rows too (the upsert below updates them).
            out.reattached = self._joined(table, tmp, self._detached(table, "t"))
            action = sql.SQL(
                "do update set {sets} where {claimable} "
                "and row({old})::text is distinct from row({new})::text"
            ).format(
                sets=sql.SQL(", ").join(
                    sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in rest
                ),
                claimable=self._claimable(table, "t"),
                old=_prefixed("t", rest),
                new=_prefixed("excluded", rest),
            )
        cur = self.conn.execute(
            sql.SQL(
                "insert into {t} as t ({c}){o} select {c} from {s} on conflict ({pk}) {action} "
                "returning (xmax = 0)"
            ).format(t=t, c=_ids(cols), o=overriding, s=s, pk=_ids(pk), action=action)
        )
        flags = [bool(r[0]) for r in cur.fetchall()]
        out.inserted = sum(flags) + fresh
        # The upsert's updates include the re-attached rows: counted once, as re-attached.
        out.updated = len(flags) - sum(flags) - out.reattached if self.mode == "replace" else 0
        # Rows neither inserted nor updated: equal already, or their key is another user's.
        out.conflicts = self._joined(table, tmp, self._theirs(table, "t"))
        out.unchanged = out.source - out.inserted - out.updated - out.reattached - out.conflicts

    def _update_from(
        self, table: UserTable, tmp: str, columns: list[str], where: sql.Composable
    ) -> int:
        """Set ``columns`` of the target rows holding an exported key and matching ``where``
        (alias t) to the exported values."""
        return self.conn.execute(
            sql.SQL(
                "update {t} as t set {sets} from {s} as s where {k} and {w} "
                "and row({old})::text is distinct from row({new})::text"
            ).format(
                t=qualified(table.schema, table.name),
                sets=sql.SQL(", ").join(
                    sql.SQL("{c} = s.{c}").format(c=sql.Identifier(c)) for c in columns
                ),
                s=sql.Identifier(tmp),
                k=_match("t", "s", table.primary_key),
                w=where,
                old=_prefixed("t", columns),
                new=_prefixed("s", columns),
            )
        ).rowcount

    def _advance_sequences(self, table: UserTable, tmp: str) -> None:
        """A sequence must not hand out a value a restored row holds: setval to at least the
        restored maximum (never backwards; other users' rows are not read)."""
        for column, seq in table.sequences:
            self.conn.execute(
                sql.SQL(
                    "select setval({seq}::regclass, m) "
                    "from (select max({c})::bigint as m from {s}) x, {seq_rel} q "
                    "where m is not null "
                    "and m > (case when q.is_called then q.last_value else q.last_value - 1 end)"
                ).format(
                    seq=sql.Literal(seq),
                    c=sql.Identifier(column),
                    s=sql.Identifier(tmp),
                    seq_rel=sql.SQL(seq),
                )
            )  # quote_ident()-ed by the server in describe()

    def _disable_triggers(self) -> None:
        """User triggers (an updated_at stamp, an audit insert) would alter or block the
        restored rows: disabled by name for this transaction, re-enabled as they were."""
        for table, _tmp, _out in self.loaded:
            rows = self.conn.execute(
                "select t.tgname, t.tgenabled::text, pg_has_role(c.relowner, 'USAGE') "
                "from pg_trigger t join pg_class c on c.oid = t.tgrelid "
                "where t.tgrelid = %s::regclass and not t.tgisinternal and t.tgenabled <> 'D' "
                "order by t.tgname",
                (f"{quote(table.schema)}.{quote(table.name)}",),
            ).fetchall()
            kept = [str(r[0]) for r in rows if not r[2]]
            if kept:
                # Only the owner may disable a trigger (Supabase's auth.users is
                # supabase_auth_admin's): they fire; rows they make in restored tables are
                # replaced by the exported ones (_fresh).
                text = (
                    f"{table.qualified}: trigger(s) {', '.join(kept)} stay enabled (the role "
                    "does not own the table); rows they write into restored tables are "
                    "replaced by the exported rows"
                )
                log.warning("%s", text)
                self.warnings.append(text)
            for name, how, owned in rows:
                if not owned:
                    continue
                self._triggers.append((table, str(name), str(how)))
                self.conn.execute(
                    sql.SQL("alter table {t} disable trigger {n}").format(
                        t=qualified(table.schema, table.name), n=sql.Identifier(str(name))
                    )
                )

    def _enable_triggers(self) -> None:
        modes = {"O": "", "A": " always", "R": " replica"}
        for table, name, how in self._triggers:
            self.conn.execute(
                sql.SQL("alter table {t} enable{m} trigger {n}").format(
                    t=qualified(table.schema, table.name),
                    m=sql.SQL(modes.get(how, "")),
                    n=sql.Identifier(name),
                )
            )


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextlib.contextmanager
def restore_transaction(target: Target, user_id: str, mode: str) -> Iterator[UserRestore]:
    """One transaction on the target; committed only if the body returns and asks for it
    (``commit``), rolled back otherwise. RLS is switched off so a role it would filter fails
    loudly instead of silently restoring fewer rows."""
    with connect(target, f"restoring the rows of user {user_id}", autocommit=False) as conn:
        conn.execute("set statement_timeout = 0")
        conn.execute("set local row_security = off")
        apply_copy_settings(conn)
        job = UserRestore(conn, user_id, mode)
        try:
            yield job
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
            raise


def commit(job: UserRestore) -> None:
    job.conn.commit()


def rollback(job: UserRestore) -> None:
    job.conn.rollback()
